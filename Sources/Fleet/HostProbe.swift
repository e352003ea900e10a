import AsyncHTTPClient
import Foundation
import NIOCore

/// How a peer checks a lost host itself: `GET http://ADDRESS/health` on its medicd's fleet
/// listener, which answers `200 medicd HOST` while that medicd runs.
public struct HostProbe: Sendable {
    public let timeout: Duration

    public init(timeout: Duration = .seconds(1)) { self.timeout = timeout }

    /// Whether `registration`'s host answers, and what was seen.
    public func check(_ registration: Registration) async -> (reachable: Bool, detail: String) {
        let url = "http://\(registration.address)/health"
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .milliseconds(Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)))
            let body = String(buffer: try await response.body.collect(upTo: 4096))
            let answered = response.status == .ok && body.hasPrefix("medicd \(registration.host)")
            return (answered, "GET \(url): \(response.status.code) \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
        } catch {
            return (false, "GET \(url): \(error)")
        }
    }
}
