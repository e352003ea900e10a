import Synchronization

/// Hands what a producer adds to a consumer in order, one delivery at a time: what comes while
/// one delivery is under way goes together in the next. A producer that waited for each event
/// to be recorded durably before taking the next would pay one write an event; through this it
/// pays one write a burst, and never waits for the writes.
public final class Batcher<Item: Sendable>: Sendable {
    private let queue = Mutex<[Item]>([])
    private let signal: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    public init() {
        (signal, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues `item` for the next delivery.
    public func add(_ item: Item) {
        queue.withLock { $0.append(item) }
        continuation.yield()
    }

    /// No more items: `run` returns once everything added is delivered.
    public func finish() { continuation.finish() }

    /// Runs `produce` with a batcher whose batches go to `deliver` meanwhile; returns (or
    /// rethrows) once everything produced is delivered.
    public static func pipe(
        isolation: isolated (any Actor)? = #isolation,
        to deliver: @escaping @Sendable ([Item]) async -> Void, _ produce: (Batcher<Item>) async throws -> Void
    ) async rethrows {
        let batcher = Batcher<Item>()
        async let delivered: Void = batcher.run(deliver)
        do {
            try await produce(batcher)
        } catch {
            batcher.finish()
            await delivered
            throw error
        }
        batcher.finish()
        await delivered
    }

    /// Delivers everything added, in order, in batches, until `finish()`.
    public func run(_ deliver: ([Item]) async -> Void) async {
        for await _ in signal {
            let items = take()
            if !items.isEmpty { await deliver(items) }
        }
        let rest = take()
        if !rest.isEmpty { await deliver(rest) }
    }

    private func take() -> [Item] {
        queue.withLock { queue in
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
    }
}
