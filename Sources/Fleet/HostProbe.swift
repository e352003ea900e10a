import AsyncHTTPClient
import Foundation
import HTTPExchange
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
            let answer = try await HTTPClient.shared.exchange(request, timeout: timeout, upTo: 4096)
            let answered = answer.status == .ok && answer.text.hasPrefix("medicd \(registration.host)")
            return (answered, "GET \(url): \(answer.status.code) \(answer.text.trimmingCharacters(in: .whitespacesAndNewlines))")
        } catch {
            return (false, "GET \(url): \(error)")
        }
    }
}
