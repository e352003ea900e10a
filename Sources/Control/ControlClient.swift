import Foundation
import Glibc
import MedicCore
import Posix

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
        let socket: Socket
        do {
            socket = try Socket.connect(to: .unix(path), timeout: .seconds(timeout))
        } catch {
            if error.code == EACCES { throw .protocolError("cannot open \(path): permission denied: the socket is for root and medicd's group") }
            throw .notRunning(path, error.code == ENAMETOOLONG ? "the path is too long" : error.reason)
        }
        defer { socket.close() }
        var line = (try? JSONEncoder().encode(request)) ?? Data()
        line.append(UInt8(ascii: "\n"))
        let answer: [UInt8]
        do {
            try socket.send(Array(line))
        } catch {
            throw .protocolError("cannot send to medicd on \(path): \(error.reason)")
        }
        do {
            answer = try socket.receiveLine(limit: 64 << 20)
        } catch {
            throw .protocolError(error.isTimeout ? "medicd did not answer within \(timeout) s" : "cannot read medicd's answer on \(path): \(error.reason)")
        }
        guard let response = try? JSONDecoder().decode(ControlResponse.self, from: Data(answer)) else {
            throw .protocolError("medicd answered something that is not a response: \(String(decoding: answer.prefix(200), as: UTF8.self))")
        }
        return response
    }
}
