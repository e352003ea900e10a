import Foundation
import Glibc
import Posix
import Testing

@Suite("Sockets: each failure names its call and address; what waits can be bounded and woken")
struct SocketTests {
    let directory: String

    init() throws {
        var template = Array("/tmp/medic-posix-XXXXXX".utf8CString)
        directory = String(cString: try #require(mkdtemp(&template)))
    }

    @Test("connecting where nobody listens names the call, the path and the reason")
    func refused() throws {
        let path = directory + "/nobody.sock"
        #expect {
            try Socket.connect(to: .unix(path))
        } throws: { error in
            guard let error = error as? PosixError else { return false }
            return error.code == ENOENT && error.description == "connect(\(path)): No such file or directory"
        }
        #expect(throws: PosixError("connect(127.0.0.1:1)", code: ECONNREFUSED)) { try Socket.connect(to: .loopback(1)) }
    }

    @Test("a path longer than a socket address can hold is refused before any call")
    func tooLong() {
        let path = directory + "/" + String(repeating: "x", count: 120)
        #expect(throws: PosixError("bind(\(path))", code: ENAMETOOLONG)) { try Socket.bind(.unix(path), .stream) }
    }

    @Test("addresses: a path, HOST:PORT with an IPv4 host, and nothing else")
    func addresses() {
        #expect(SocketAddress("/run/haproxy/admin.sock") == .unix("/run/haproxy/admin.sock"))
        #expect(SocketAddress("127.0.0.1:9999") == .ipv4(host: "127.0.0.1", port: 9999))
        #expect(SocketAddress("localhost:9999") == nil)
        #expect(SocketAddress("127.0.0.1:99999") == nil)
        #expect(SocketAddress("relative.sock") == nil)
    }

    @Test("bind replaces a stale socket file and gives the new one its mode; a line and an answer go through")
    func exchange() throws {
        let path = directory + "/echo.sock"
        FileManager.default.createFile(atPath: path, contents: Data("stale".utf8))
        let listener = try Socket.bind(.unix(path), .stream, mode: 0o660)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o660 && info.st_mode & S_IFMT == S_IFSOCK)
        let served = Thread.detach {
            guard let client = try? listener.accept(), let line = try? client.receiveLine(limit: 100) else { return }
            try? client.send(line.reversed().dropFirst() + [UInt8(ascii: "\n")])
            client.close()
        }
        let client = try Socket.connect(to: .unix(path), timeout: .seconds(2))
        try client.send("medic\n")
        #expect(String(decoding: try client.receiveAll(), as: UTF8.self) == "cidem\n")
        served.wait()
    }

    @Test("a refusal sent while the peer is still sending reaches it: the lingering close reads on, so the connection is not reset")
    func lingeringClose() throws {
        let path = directory + "/refuse.sock"
        let listener = try Socket.bind(.unix(path), .stream)
        for _ in 0..<10 {
            let served = Thread.detach {
                guard let client = try? listener.accept() else { return }
                client.setTimeout(.seconds(2))
                _ = try? client.receiveLine(limit: 1000)
                usleep(50_000)  // as long as writing the refusal to the audit log takes
                try? client.send("too large\n")
                client.closeLingering(within: .seconds(2))
            }
            let client = try Socket.connect(to: .unix(path), timeout: .seconds(5))
            // Fits in the socket's buffers: the send ends before the answer comes, and some of it
            // is never read.
            try? client.send([UInt8](repeating: UInt8(ascii: "x"), count: 120_000))
            let answer = try client.receiveAll()
            client.close()
            #expect(String(decoding: answer, as: UTF8.self) == "too large\n")
            served.wait()
        }
    }

    @Test("a receive past its timeout throws a timeout; a line over its limit throws EMSGSIZE")
    func bounds() throws {
        let path = directory + "/slow.sock"
        let listener = try Socket.bind(.unix(path), .stream)
        let client = try Socket.connect(to: .unix(path), timeout: .milliseconds(200))
        let server = try listener.accept()
        let began = ContinuousClock.now
        #expect { try client.receive() } throws: { ($0 as? PosixError)?.isTimeout == true }
        #expect(ContinuousClock.now - began >= .milliseconds(150))
        try server.send(Array(repeating: UInt8(ascii: "a"), count: 5000))
        #expect(throws: PosixError("recv(\(path))", code: EMSGSIZE)) { try client.receiveLine(limit: 1000) }
    }

    @Test("shutdown wakes a thread blocked in accept; it closes the socket itself")
    func shutdownWakes() throws {
        let listener = try Socket.bind(.unix(directory + "/quiet.sock"), .stream)
        let ended = Thread.detach {
            while (try? listener.accept()) != nil {}
            listener.close()
        }
        usleep(50_000)
        listener.shutdown()
        #expect(ended.wait(timeout: .seconds(2)))
        #expect(listener.descriptor == -1)
    }
}

/// A thread that can be waited for.
private final class Waitable: Sendable {
    let done = DispatchSemaphore(value: 0)

    @discardableResult
    func wait(timeout: Duration = .seconds(5)) -> Bool {
        done.wait(timeout: .now() + .milliseconds(Int(timeout.components.seconds * 1000))) == .success
    }
}

extension Thread {
    fileprivate static func detach(_ body: @escaping @Sendable () -> Void) -> Waitable {
        let waitable = Waitable()
        Thread.detachNewThread {
            body()
            waitable.done.signal()
        }
        return waitable
    }
}
