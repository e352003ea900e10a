import MedicCore
import Testing

@Suite("Target selectors looked up by name")
struct SelectorIndexTests {
    let index = SelectorIndex<String>([
        (.unit("web@*.service"), "glob first"),
        (.unit("web@1.service"), "named"),
        (.host, "host"),
        (.unit("web@[12].service"), "class"),
        (.unit("web@1.service"), "named again"),
        (.peers("db*"), "peers"),
    ])

    @Test("names, globs, the host and peers each select what they did one by one, in the order given")
    func lookups() {
        #expect(index.values(selecting: "web@1.service") == ["glob first", "named", "class", "named again"])
        #expect(index.values(selecting: "web@3.service") == ["glob first"])
        #expect(index.values(selecting: "host") == ["host"])
        #expect(index.values(selecting: "host/db2") == ["peers"])
        #expect(index.values(selecting: "db.service").isEmpty)
        #expect(index.selects("web@2.service") && !index.selects("api.service"))
    }

    @Test("a plain name matches only itself; glob characters still glob")
    func plainNames() {
        #expect(Glob.matches("web.service", "web.service"))
        #expect(!Glob.matches("web.service", "web.services"))
        #expect(!Glob.matches("web.service", "Web.service"))
        #expect(Glob.matches("web?.service", "web1.service"))
    }
}
