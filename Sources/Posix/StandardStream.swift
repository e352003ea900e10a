import Glibc

/// Standard output and error, written without ever stopping the program: Foundation's
/// `FileHandle.write` traps when a write fails, and medicd's standard output is a stream to
/// journald that can break (journald refuses streams past its limit, or restarts).
public enum StandardStream {
    /// Writes all of `text` to `descriptor` (standard output by default), again after an
    /// interruption or a short write; false if it could not (a closed pipe, a refused stream).
    @discardableResult
    public static func write(_ text: String, to descriptor: Int32 = STDOUT_FILENO) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }
}
