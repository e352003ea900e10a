import Glibc

/// A failed system call: which one (with what it was called on), and the errno it set.
public struct PosixError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The call and its subject, e.g. `connect(/run/medic/control.sock)`.
    public var call: String
    /// The positive errno value.
    public var code: Int32

    /// The error of `call`, from `code` (by default, the errno the call just set).
    public init(_ call: String, code: Int32 = errno) {
        self.call = call
        self.code = code
    }

    /// What the C library says the errno means, e.g. `Connection refused`.
    public var reason: String { Self.reason(code) }

    /// Whether a receive or send ran out of its time (SO_RCVTIMEO / SO_SNDTIMEO).
    public var isTimeout: Bool { code == EAGAIN || code == EWOULDBLOCK }

    public var description: String { "\(call): \(reason)" }

    /// What the C library says `code` means (by default, the errno just set).
    public static func reason(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
}
