import Crypto
import Foundation
import Glibc
import MedicCore
import Posix
import Systemd

/// Varnish's management CLI (`varnishd -T HOST:PORT -S SECRETFILE`), spoken natively: every
/// reply is a 13-byte header, `"NNN LLLLLLLL\n"` (status and body length), then the body and a
/// newline. Status 107 asks for authentication: the body's first 32 characters are the
/// challenge, answered with `auth` and the SHA-256 of challenge, newline, the secret file's
/// bytes as they are, challenge, newline (varnish-cli(7)).
public struct VarnishCLI: Sendable {
    /// One reply of the CLI.
    public struct Reply: Sendable, Equatable {
        public var status: Int
        public var body: String
    }

    /// How long a session may wait on one read or write, connect included.
    public var timeout: Duration

    public init(timeout: Duration = .seconds(2)) { self.timeout = timeout }

    /// The answer to a challenge (lower-case hex).
    public static func authenticator(challenge: String, secret: [UInt8]) -> String {
        let bytes = Array(challenge.utf8) + [0x0A] + secret + Array(challenge.utf8) + [0x0A]
        return SHA256.hash(data: bytes).hexString
    }

    /// Runs `commands` in one session at `address`, authenticated with `secretFile`; every
    /// command must answer 200, or the session fails naming the command and Varnish's words.
    public func run(_ commands: [String], at address: String, secretFile: String) async throws(PoolError) -> [Reply] {
        let timeout = self.timeout
        let result: Result<[Reply], PoolError> = await onThreadOfItsOwn("medic-varnish") {
            Result { () throws(PoolError) -> [Reply] in try Self.session(commands, address: address, secretFile: secretFile, timeout: timeout) }
        }
        return try result.get()
    }

    private static func session(_ commands: [String], address: String, secretFile: String, timeout: Duration) throws(PoolError) -> [Reply] {
        guard let target = SocketAddress(address), !address.hasPrefix("/") else {
            throw PoolError("Varnish's CLI address '\(address)' is not HOST:PORT with an IPv4 host (varnishd -T)")
        }
        let socket: Socket
        do {
            socket = try Socket.connect(to: target, timeout: timeout)
        } catch {
            throw PoolError("Varnish's CLI is unreachable at \(address): connect: \(error.reason)")
        }
        defer { socket.close() }
        do {
            var banner = try reply(socket)
            if banner.status == 107 {
                let secret: [UInt8]
                do {
                    secret = Array(try Data(contentsOf: URL(fileURLWithPath: secretFile)))
                } catch {
                    throw PoolError("cannot read Varnish's secret file \(secretFile) (varnishd -S): \(error.localizedDescription)")
                }
                try socket.send("auth \(authenticator(challenge: String(banner.body.prefix(32)), secret: secret))\n")
                banner = try reply(socket)
                if banner.status != 200 {
                    throw PoolError("Varnish at \(address) refused the authentication with the secret file \(secretFile) (status \(banner.status)): it is not the file varnishd was started with (-S)")
                }
            }
            guard banner.status == 200 else { throw PoolError("Varnish at \(address) answered the connection with status \(banner.status): \(banner.body.prefix(200))") }
            var replies: [Reply] = []
            for command in commands {
                try socket.send(command + "\n")
                let answer = try reply(socket)
                guard answer.status == 200 else {
                    throw PoolError("Varnish at \(address) refused '\(command)' (status \(answer.status)): \(answer.body.trimmingCharacters(in: .whitespacesAndNewlines).prefix(300))")
                }
                replies.append(answer)
            }
            return replies
        } catch let error as PosixError {
            if error.isTimeout { throw PoolError("Varnish at \(address) did not answer within \(DurationText.format(timeout))") }
            throw PoolError("talking to Varnish at \(address): \(error)")
        } catch let error as PoolError {
            throw error
        } catch {
            throw PoolError("talking to Varnish at \(address): \(error)")
        }
    }

    /// One reply: its header, its body and the newline after it.
    private static func reply(_ socket: Socket) throws -> Reply {
        let header = String(decoding: try socket.receive(exactly: 13), as: UTF8.self)
        let fields = header.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ", omittingEmptySubsequences: true)
        guard header.hasSuffix("\n"), fields.count == 2, let status = Int(fields[0]), let length = Int(fields[1]),
              (0...(16 << 20)).contains(length)
        else { throw PoolError("not Varnish's CLI: its reply began '\(header.trimmingCharacters(in: .whitespacesAndNewlines))'") }
        let body = try socket.receive(exactly: length + 1)
        return Reply(status: status, body: String(decoding: body.dropLast(), as: UTF8.self))
    }
}
