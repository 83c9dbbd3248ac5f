// The bmxnet digits sample: draw a digit, the `make demo` model (binary LeNet) classifies it.
import SwiftUI

@main
struct DigitsApp: App {
    var body: some Scene {
        WindowGroup {
            ContentView()
        }
    }
}
