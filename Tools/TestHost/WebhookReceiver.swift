import Foundation
import Posix
import Synchronization

/// A webhook receiver on loopback for tests: keeps every request body it is sent and answers
/// each with `status`. Runs on its own thread; `stop()` (also on deinit) closes it.
public final class WebhookReceiver: Sendable {
    public let port: Int
    private let listener: Socket
    private let bodies = Mutex<[String]>([])

    public init(status: Int) throws {
        let listener = try Socket.bind(.loopback(0), .stream)
        port = listener.localPort
        self.listener = listener
        Thread.detachNewThread { [self] in
            // Ends when `stop()` shuts the listener down; this thread closes it.
            while let client = try? listener.accept() {
                if let body = Self.readBody(client) { bodies.withLock { $0.append(body) } }
                let reason = status < 300 ? "OK" : "Error"
                try? client.send("HTTP/1.1 \(status) \(reason)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                client.close()
            }
            listener.close()
        }
    }

    deinit { stop() }

    /// The URL to give a playbook.
    public var url: String { "http://127.0.0.1:\(port)/hook" }

    /// Every body received so far, in order.
    public var received: [String] { bodies.withLock { $0 } }

    public func stop() { listener.shutdown() }

    /// Reads one HTTP request and returns its body (Content-Length bytes after the headers).
    private static func readBody(_ client: Socket) -> String? {
        var data: [UInt8] = []
        while true {
            guard let chunk = try? client.receive(), !chunk.isEmpty else { return nil }
            data += chunk
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
