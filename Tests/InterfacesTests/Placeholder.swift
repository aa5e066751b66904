import XCTest

final class InterfacesTestsPlaceholder: XCTestCase {}
