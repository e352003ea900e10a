import Foundation
import Glibc
import Synchronization

/// A webhook receiver on loopback for tests: keeps every request body it is sent and answers
/// each with `status`. Runs on its own thread; `stop()` (also on deinit) closes it.
public final class WebhookReceiver: Sendable {
    public let port: Int
    private let fd: Int32
    private let bodies = Mutex<[String]>([])
    private let stopped = Atomic<Bool>(false)

    public init(status: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard bound == 0, listen(fd, 64) == 0 else { throw TestHostError.setup("webhook receiver: \(String(cString: strerror(errno)))") }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        self.fd = fd
        let listener = fd
        Thread.detachNewThread { [self] in
            while !stopped.load(ordering: .relaxed) {
                let client = accept(listener, nil, nil)
                if client < 0 { if errno == EINTR { continue } else { break } }
                if let body = Self.readBody(client) { bodies.withLock { $0.append(body) } }
                let reason = status < 300 ? "OK" : "Error"
                let response = Array("HTTP/1.1 \(status) \(reason)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                _ = send(client, response, response.count, Int32(MSG_NOSIGNAL))
                close(client)
            }
        }
    }

    deinit { stop() }

    /// The URL to give a playbook.
    public var url: String { "http://127.0.0.1:\(port)/hook" }

    /// Every body received so far, in order.
    public var received: [String] { bodies.withLock { $0 } }

    public func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    /// Reads one HTTP request and returns its body (Content-Length bytes after the headers).
    private static func readBody(_ client: Int32) -> String? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = recv(client, &buffer, buffer.count, 0)
            if n <= 0 { return nil }
            data += buffer[0..<n]
            let text = String(decoding: data, as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { continue }
            let head = text[..<end.lowerBound].lowercased()
            let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            let body = Array(text.utf8)[(text.utf8.distance(from: text.startIndex, to: end.upperBound))...]
            if body.count >= length { return String(decoding: body.prefix(length), as: UTF8.self) }
        }
    }
}
