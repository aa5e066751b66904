import XCTest

final class TrafficGenTestsPlaceholder: XCTestCase {}
