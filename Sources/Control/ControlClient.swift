import Foundation
import Glibc
import MedicCore

/// The CLI's side of medicd's control socket: one request, one answer, per connection.
public enum ControlClient {
    /// The socket's default place (`RuntimeDirectory=medic`).
    public static let defaultSocket = DefaultPaths.controlSocket

    public enum Failure: Error, CustomStringConvertible {
        /// Nobody listens there (exit 3, like systemctl's "not running").
        case notRunning(String, String)
        /// Somebody answered, but not sensibly.
        case protocolError(String)

        public var description: String {
            switch self {
            case .notRunning(let path, let why): "medicd is not running (no answer on \(path): \(why))"
            case .protocolError(let why): why
            }
        }
    }

    /// Sends `request` and waits (up to `timeout`) for the answer.
    public static func send(_ request: ControlRequest, to path: String, timeout: Int = 30) throws(Failure) -> ControlResponse {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .notRunning(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw .notRunning(path, "the path is too long") }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let why = errno == EACCES ? "permission denied: the socket is for root and medicd's group" : String(cString: strerror(errno))
            if errno == EACCES { throw .protocolError("cannot open \(path): \(why)") }
            throw .notRunning(path, why)
        }
        var line = (try? JSONEncoder().encode(request)) ?? Data()
        line.append(UInt8(ascii: "\n"))
        guard line.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == line.count else {
            throw .protocolError("cannot send to medicd on \(path): \(String(cString: strerror(errno)))")
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !answer.contains(UInt8(ascii: "\n")) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { answer += buffer[0..<n]; continue }
            if n < 0, errno == EINTR { continue }
            if n < 0, errno == EAGAIN { throw .protocolError("medicd did not answer within \(timeout) s") }
            break
        }
        guard let response = try? JSONDecoder().decode(ControlResponse.self, from: Data(answer)) else {
            throw .protocolError("medicd answered something that is not a response: \(String(decoding: answer.prefix(200), as: UTF8.self))")
        }
        return response
    }
}
