/// The file of an nginx upstream's `server` lines that Medic keeps (the operator's upstream
/// block includes it). `maint` marks a server `down` and says so at the end of its line
/// (`server 127.0.0.1:8081 down; # medic: down`); `ready` unmarks only a line Medic marked, so a
/// `down` a person wrote stays. Every other line is kept as it is.
struct NginxUpstreamFile: Equatable {
    static let marker = "# medic: down"

    var lines: [String]

    init(_ text: String) { lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }

    var text: String { lines.joined(separator: "\n") }

    /// One `server` line: its address, whether it is `down`, and whether Medic marked it so.
    struct Server: Equatable {
        var address: String
        var down: Bool
        var markedByMedic: Bool
    }

    /// The `server` lines, in the file's order.
    var servers: [Server] { lines.compactMap(Self.server) }

    /// Marks the server at `address` down (Medic's mark) or unmarks it; a line already so, or no
    /// line with that address, is left as it is. Unmarking a line Medic did not mark is refused
    /// by the caller, not here.
    mutating func set(_ address: String, down: Bool) {
        guard let index = lines.firstIndex(where: { Self.server($0)?.address == address }), let server = Self.server(lines[index]), server.down != down
        else { return }
        let line = lines[index]
        let semicolon = line.firstIndex(of: ";")!
        let indent = line.prefix { $0 == " " || $0 == "\t" }
        var words = line[..<semicolon].split(whereSeparator: \.isWhitespace).map(String.init)
        if down {
            words.append("down")
            lines[index] = indent + words.joined(separator: " ") + "; " + Self.marker
        } else {
            words.removeAll { $0 == "down" }
            lines[index] = indent + words.joined(separator: " ") + ";"
        }
    }

    private static func server(_ line: String) -> Server? {
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        guard trimmed.hasPrefix("server "), let semicolon = trimmed.firstIndex(of: ";") else { return nil }
        let words = trimmed[..<semicolon].split(whereSeparator: \.isWhitespace)
        guard words.count >= 2 else { return nil }
        let comment = trimmed[trimmed.index(after: semicolon)...].drop(while: \.isWhitespace)
        return Server(address: String(words[1]), down: words.dropFirst(2).contains("down"), markedByMedic: comment.hasPrefix(marker))
    }
}
