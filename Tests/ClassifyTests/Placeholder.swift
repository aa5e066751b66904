import XCTest

final class ClassifyTestsPlaceholder: XCTestCase {}
