import Audit
import MedicCore

/// The incidents' timeline as inline SVG: a lane per target, the impact band from the moment it
/// broke to the moment it was healthy again, detection, mitigation and recovery marks with their
/// durations, each step as a bar from intent to result coloured by outcome, guard stops,
/// escalations and notifications as markers, and the pool states of the target's servers as
/// bands under it. Every mark links to its record's row (`#r<seq>`); hovering or focusing it
/// shows the record, by CSS alone (the page runs no script).
struct TimelineDrawing {
    static let labelWidth = 190.0
    static let plotWidth = 880.0
    static let width = labelWidth + plotWidth + 10
    static let axisHeight = 24.0
    static let flagRow = 15.0
    static let barRow = 17.0
    static let poolRow = 10.0

    var body: [String] = []
    var tips: [String] = []
    var rules: [String] = []
    var marks = 0
    let axis: TimeAxis

    private init(axis: TimeAxis) { self.axis = axis }

    /// The SVG and the CSS rules that show each mark's record on hover and focus.
    static func draw(_ stories: [IncidentStory]) -> (svg: String, css: String) {
        let moments = stories.flatMap { story in
            [story.impactStart, story.end] + story.records.map(\.wallMicroseconds) + [story.healthyAgain?.at].compactMap { $0 }
        }
        var drawing = TimelineDrawing(axis: TimeAxis(moments: moments.isEmpty ? [Timestamp.now().wallMicroseconds] : moments, left: labelWidth, width: plotWidth))
        let lanes = Lane.of(stories)
        var y = axisHeight
        for (index, lane) in lanes.enumerated() {
            y = drawing.draw(lane, top: y, shaded: index % 2 == 1, hosts: Set(stories.map(\.host)).count > 1)
        }
        let height = y + 8
        var svg = ["<svg id=\"tl\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(Markup.px(width)) \(Markup.px(height))\" role=\"group\" aria-label=\"Timeline, UTC: a lane per target\">"]
        svg.append(drawing.axisLines(height: height))
        svg.append(drawing.breakBands(height: height))
        svg += drawing.body
        svg.append("<g class=\"tips\">" + drawing.tips.joined() + "</g></svg>")
        return (svg.joined(separator: "\n"), drawing.rules.joined(separator: "\n"))
    }

    /// The targets, each with its incidents, in the order they first broke.
    private struct Lane {
        var host: String
        var target: String
        var stories: [IncidentStory]

        static func of(_ stories: [IncidentStory]) -> [Lane] {
            var lanes: [Lane] = []
            for story in stories.sorted(by: { $0.impactStart < $1.impactStart }) {
                if let index = lanes.firstIndex(where: { $0.host == story.host && $0.target == story.summary.target }) {
                    lanes[index].stories.append(story)
                } else {
                    lanes.append(Lane(host: story.host, target: story.summary.target, stories: [story]))
                }
            }
            return lanes
        }
    }

    /// One thing drawn in a row of flags (labels and markers above the bars) or of bars.
    struct Placed {
        var from: Double
        var to: Double
        var draw: (inout TimelineDrawing, _ y: Double) -> Void
        /// Given by `pack`.
        var row = 0
    }

    private mutating func draw(_ lane: Lane, top: Double, shaded: Bool, hosts: Bool) -> Double {
        var flags: [Placed] = []
        var bars: [Placed] = []
        for story in lane.stories {
            flags += phaseFlags(story) + markerFlags(story)
            bars += story.steps.map { stepBar($0, until: story.end) }
        }
        let flagRows = Self.pack(&flags)
        let barRows = Self.pack(&bars)
        let servers = Array(Set(lane.stories.flatMap { $0.pool.map(\.server) })).sorted()
        let flagsTop = top + 4
        let barsTop = flagsTop + Double(max(flagRows, 1)) * Self.flagRow + 2
        let poolTop = barsTop + Double(max(barRows, 1)) * Self.barRow + 2
        let bottom = poolTop + Double(servers.count) * Self.poolRow + 6
        let target = Markup.escape(lane.target)
        body.append("<g class=\"lane\" data-target=\"\(target)\" data-host=\"\(Markup.escape(lane.host))\">")
        body.append("<rect class=\"lane-bg\(shaded ? " shaded" : "")\" x=\"0\" y=\"\(Markup.px(top))\" width=\"\(Markup.px(Self.width))\" height=\"\(Markup.px(bottom - top))\"/>")
        body.append("<text class=\"lane-name\" x=\"6\" y=\"\(Markup.px(top + 16))\"><title>\(target)</title>\(Markup.escape(Markup.clip(lane.target, 26)))</text>")
        if hosts { body.append("<text class=\"lane-host\" x=\"6\" y=\"\(Markup.px(top + 30))\">\(Markup.escape(Markup.clip(lane.host, 30)))</text>") }
        for story in lane.stories { impactBand(story, top: top, bottom: bottom) }
        for story in lane.stories { phaseLines(story, top: top, bottom: bottom) }
        for (index, server) in servers.enumerated() {
            let y = poolTop + Double(index) * Self.poolRow
            body.append("<text class=\"pool-name\" x=\"14\" y=\"\(Markup.px(y + 8))\">pool \(Markup.escape(Markup.clip(server, 24)))</text>")
            for span in lane.stories.flatMap(\.pool) where span.server == server { poolSegment(span, y: y) }
        }
        for item in flags { item.draw(&self, flagsTop + Double(item.row) * Self.flagRow) }
        for item in bars { item.draw(&self, barsTop + Double(item.row) * Self.barRow) }
        body.append("</g>")
        return bottom
    }

    /// Greedy rows: each item, in order of its left edge, goes in the first row where it does
    /// not overlap. Returns how many rows were used.
    private static func pack(_ items: inout [Placed]) -> Int {
        items.sort { $0.from < $1.from }
        var rightEdges: [Double] = []
        for index in items.indices {
            if let row = rightEdges.firstIndex(where: { $0 + 3 <= items[index].from }) {
                rightEdges[row] = items[index].to
                items[index].row = row
            } else {
                rightEdges.append(items[index].to)
                items[index].row = rightEdges.count - 1
            }
        }
        return rightEdges.count
    }
}
