import AsyncHTTPClient
import MedicCore
import NIOCore
import NIOHTTP1

/// A whole HTTP answer: its status and its body.
public struct HTTPAnswer: Sendable {
    public var status: HTTPResponseStatus
    public var body: ByteBuffer

    /// The body as UTF-8 text.
    public var text: String { String(buffer: body) }
}

/// No whole answer within the time allowed.
public struct HTTPTimedOut: Error, CustomStringConvertible, Sendable {
    public var timeout: Duration
    public var description: String { "timed out after \(DurationText.format(timeout))" }
}

extension HTTPClient {
    /// Sends `request` and reads its whole answer, at most `limit` bytes of body, all within
    /// `timeout`. async-http-client's own deadline ends with the response head: a server that
    /// sends its head and then goes quiet would hold a body read for ever. Past `timeout` this
    /// throws `HTTPTimedOut` whatever the server does, and the request is cancelled.
    public func exchange(_ request: HTTPClientRequest, timeout: Duration, upTo limit: Int) async throws -> HTTPAnswer {
        let outcome = await within(timeout) { () async -> Result<HTTPAnswer, Error> in
            do {
                let response = try await self.execute(request, timeout: .milliseconds(timeout.milliseconds))
                return .success(HTTPAnswer(status: response.status, body: try await response.body.collect(upTo: limit)))
            } catch let error as HTTPClientError where [.deadlineExceeded, .readTimeout, .connectTimeout].contains(error) {
                return .failure(HTTPTimedOut(timeout: timeout))
            } catch {
                return .failure(error)
            }
        }
        guard let outcome else { throw HTTPTimedOut(timeout: timeout) }
        return try outcome.get()
    }
}
