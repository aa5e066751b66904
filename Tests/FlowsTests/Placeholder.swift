import XCTest

final class FlowsTestsPlaceholder: XCTestCase {}
