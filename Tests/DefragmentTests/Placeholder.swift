import XCTest

final class DefragmentTestsPlaceholder: XCTestCase {}
