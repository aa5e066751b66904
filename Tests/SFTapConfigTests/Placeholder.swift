import XCTest

final class SFTapConfigTestsPlaceholder: XCTestCase {}
