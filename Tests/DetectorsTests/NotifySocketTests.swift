import Foundation
import Glibc
@testable import Systemd
import Testing

@Suite("Sending to the service manager's notification socket without libsystemd")
struct NotifySocketTests {
    @Test("to a path: the manager's end reads the message whole, with medicd's PID from the kernel")
    func path() async throws {
        var template = Array("/tmp/medic-notify-XXXXXX".utf8CString)
        let directory = String(cString: try #require(mkdtemp(&template)))
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try NotifyServer(path: directory + "/notify") { pid in "pid \(pid)" }
        defer { server.close() }
        let socket = try #require(NotifySocket(environment: directory + "/notify"))
        #expect(socket.send("READY=1\nSTATUS=watching 3 units"))
        var messages = server.messages.makeAsyncIterator()
        let message = try #require(await messages.next())
        #expect(message.pid == getpid())
        #expect(message.fields == ["READY": "1", "STATUS": "watching 3 units"])
    }

    @Test("to an abstract name (@name): the name is exactly the bytes after the @")
    func abstractName() throws {
        let name = "medic-notify-test-\(getpid())"
        let receiver = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(receiver >= 0)
        defer { close(receiver) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = [0] + Array(name.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout.offset(of: \sockaddr_un.sun_path)! + bytes.count)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, length) } }
        try #require(bound == 0)
        #expect(try #require(NotifySocket(environment: "@" + name)).send("WATCHDOG=1"))
        // The datagram is queued by the time send returns: this read does not wait.
        var buffer = [UInt8](repeating: 0, count: 64)
        let read = recv(receiver, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        #expect(read == 10 && String(decoding: buffer[0..<max(read, 0)], as: UTF8.self) == "WATCHDOG=1")
    }

    @Test("what it cannot send to is left to sd_notify: unset, empty, vsock, relative, too long")
    func others() {
        for value in [nil, "", "vsock:2:1234", "run/notify", "/" + String(repeating: "a", count: 200)] {
            #expect(NotifySocket(environment: value) == nil, "\(value ?? "unset")")
        }
    }

    @Test("a socket nobody reads: send says it was not sent, so the caller falls back")
    func nobodyListening() throws {
        let socket = try #require(NotifySocket(environment: "/tmp/medic-notify-nobody-\(getpid())"))
        #expect(!socket.send("READY=1"))
    }
}
