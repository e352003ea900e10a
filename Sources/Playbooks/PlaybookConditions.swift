import MedicCore

/// The `when:` language, for tools other than the playbook parser (the simulator's timelines).
public enum PlaybookConditions {
    /// Parses a condition; on failure, the message and the character offset of the problem.
    public static func parse(_ text: String) -> Result<Condition, Diagnostic> {
        ConditionParser.parse(text).mapError { Diagnostic(file: "", line: 1, column: $0.offset + 1, message: $0.message) }
    }
}
