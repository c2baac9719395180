/// Polls `condition` every 10 ms until it holds (true) or `timeout` passes (false): for
/// waiting on state a test can observe, never on a guessed delay.
func poll(timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
