import Posix

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

/// A loopback TCP port that was free a moment ago (the kernel picked it), for a backend.
public func freePort() -> Int {
    (try? Socket.bind(.loopback(0), .stream))?.localPort ?? 0
}
