import Foundation
import Glibc
import Posix
import Systemd
import Testing

@Suite("The heartbeat socket's receiving end")
struct NotifyServerTests {
    @Test("a datagram arrives with its sender's PID from the kernel; close() ends the stream and removes the socket")
    func receiveAndClose() async throws {
        var template = Array("/tmp/medic-notify-XXXXXX".utf8CString)
        let directory = String(cString: try #require(mkdtemp(&template)))
        let path = directory + "/heartbeat.sock"
        let server = try NotifyServer(path: path) { pid in "pid \(pid)" }
        let sender = try Socket.connect(to: .unix(path), .datagram)
        try sender.send("WATCHDOG=1\nSTATUS=fine")
        var messages = server.messages.makeAsyncIterator()
        let first = try #require(await messages.next())
        #expect(first.pid == getpid() && first.sender == "pid \(getpid())")
        #expect(first.fields == ["WATCHDOG": "1", "STATUS": "fine"])
        server.close()
        // The receiving thread wakes, closes the descriptor itself, and the stream ends.
        #expect(await messages.next() == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
