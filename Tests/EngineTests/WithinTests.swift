import Dispatch
import MedicCore
import Testing

@Suite("Bounded waits")
struct WithinTests {
    @Test("an operation that answers in time gives its value")
    func inTime() async {
        #expect(await within(.seconds(5)) { 42 } == 42)
    }

    @Test("one that ignores cancellation and answers late is not waited for: nil at the deadline, its task cancelled")
    func late() async {
        let started = ContinuousClock.now
        let value: Int? = await within(.milliseconds(200)) {
            // Answers after 2 s whatever happens: a call that does not heed cancellation.
            await withCheckedContinuation { continuation in
                DispatchQueue.global().asyncAfter(deadline: .now() + 2) { continuation.resume(returning: 1) }
            }
        }
        #expect(value == nil)
        #expect(ContinuousClock.now - started < .seconds(1))
    }

    @Test("cancelling the caller ends the wait at once")
    func cancelled() async {
        let waiter = Task { await within(.seconds(30)) { try? await Task.sleep(for: .seconds(30)) } }
        try? await Task.sleep(for: .milliseconds(50))
        let started = ContinuousClock.now
        waiter.cancel()
        #expect(await waiter.value == nil)
        #expect(ContinuousClock.now - started < .seconds(1))
    }
}
