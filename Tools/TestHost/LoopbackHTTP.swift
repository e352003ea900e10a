import Posix
import Synchronization

/// Sends `request` (raw HTTP) to 127.0.0.1:`port` and returns the status code and body (status 0
/// if the answer is not HTTP); throws if nothing listens there.
public func httpExchange(port: Int, _ request: String, timeout seconds: Int = 5) throws -> (status: Int, body: String) {
    try httpExchange(.loopback(port), request, timeout: seconds)
}

/// Sends `request` (raw HTTP) to `address` and returns the status code and body.
public func httpExchange(_ address: SocketAddress, _ request: String, timeout seconds: Int = 5) throws -> (status: Int, body: String) {
    let socket = try Socket.connect(to: address, timeout: .seconds(seconds))
    defer { socket.close() }
    try socket.send(request)
    let text = String(decoding: (try? socket.receiveAll()) ?? [], as: UTF8.self)
    guard let statusLine = text.split(separator: "\r\n").first, let code = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
        return (0, text)
    }
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (code, body)
}

/// A TCP connection to 127.0.0.1:`port`; throws if nothing listens there.
public func loopbackConnection(port: Int) throws -> Socket {
    try Socket.connect(to: .loopback(port))
}

/// A connection to the Unix stream socket at `path`; throws if nothing listens there.
public func unixConnection(path: String) throws -> Socket {
    try Socket.connect(to: .unix(path))
}

/// A loopback TCP port that was free a moment ago (the kernel picked it), for a backend; never
/// one this process was given before, so that two backends of one run never get the same port
/// (the kernel may pick a port again as soon as its probe socket is closed).
public func freePort() -> Int {
    for _ in 0..<1000 {
        let port = (try? Socket.bind(.loopback(0), .stream))?.localPort ?? 0
        if port != 0, handedOut.withLock({ $0.insert(port).inserted }) { return port }
    }
    return 0
}

private let handedOut = Mutex<Set<Int>>([])
