// Loads the make-demo model from the app bundle and classifies a drawing.
//
// The drawing becomes the model's 28 x 28 input exactly as the demo's training digits were
// made (cbmx_digit_input in CBmxnet, tested on Linux by tests/test_mobile_apps.py): the ink's
// bounding box as a 32 x 32 on/off bitmap, 4 x 4 counts (scikit-learn's 8 x 8 digits, 0..16),
// then the demo's bilinear 8 -> 20 and 28 x 28 frame (mnist_data.digits_to_28x28).
import Bmxnet
import CBmxnet
import CoreGraphics
import Foundation

struct Prediction {
    let digit: Int
    let probability: Double
}

final class DigitClassifier {
    static let side = Int(CBMX_DIGIT_SIDE)
    private let model: BmxnetModel

    /// Reads binarized_mnist-symbol.json and binarized_mnist-0001.params from the bundle.
    init(bundle: Bundle = .main) throws {
        guard let symbol = bundle.url(forResource: "binarized_mnist-symbol", withExtension: "json"),
              let params = bundle.url(forResource: "binarized_mnist-0001", withExtension: "params")
        else {
            throw BmxnetError(status: "BMX_ERROR_IO",
                              message: "the app bundle lacks binarized_mnist-symbol.json or " +
                                       "binarized_mnist-0001.params; run `make demo` and " +
                                       "regenerate the project (README.md)")
        }
        model = try BmxnetModel(symbolJSON: try Data(contentsOf: symbol),
                                params: try Data(contentsOf: params),
                                inputShape: [1, 1, DigitClassifier.side, DigitClassifier.side])
    }

    /// Strokes (points in a square canvas of `canvasSide` points) rendered white on black into
    /// a grey bitmap of `pixels` x `pixels`, with the pen width the canvas shows.
    static func render(strokes: [[CGPoint]], canvasSide: CGFloat, lineWidth: CGFloat,
                       pixels: Int = 280) -> [UInt8] {
        var ink = [UInt8](repeating: 0, count: pixels * pixels)
        ink.withUnsafeMutableBytes { buffer in
            guard let context = CGContext(data: buffer.baseAddress, width: pixels, height: pixels,
                                          bitsPerComponent: 8, bytesPerRow: pixels,
                                          space: CGColorSpaceCreateDeviceGray(),
                                          bitmapInfo: CGImageAlphaInfo.none.rawValue) else { return }
            let scale = CGFloat(pixels) / canvasSide
            // CoreGraphics' origin is bottom-left; the canvas's is top-left
            context.translateBy(x: 0, y: CGFloat(pixels))
            context.scaleBy(x: scale, y: -scale)
            context.setStrokeColor(gray: 1, alpha: 1)
            context.setLineWidth(lineWidth)
            context.setLineCap(.round)
            context.setLineJoin(.round)
            for stroke in strokes where !stroke.isEmpty {
                context.move(to: stroke[0])
                // a tap is a dot
                context.addLine(to: stroke.count > 1 ? stroke[1] : stroke[0])
                for point in stroke.dropFirst(2) { context.addLine(to: point) }
                context.strokePath()
            }
        }
        return ink
    }

    /// The three most likely digits and the milliseconds of the inference; nil for a blank
    /// drawing.
    func classify(ink: [UInt8], pixels: Int) throws -> (top: [Prediction], milliseconds: Double)? {
        var input = [Float](repeating: 0, count: DigitClassifier.side * DigitClassifier.side)
        let drawn = ink.withUnsafeBufferPointer { inkBuffer in
            input.withUnsafeMutableBufferPointer { inputBuffer in
                cbmx_digit_input(inkBuffer.baseAddress, Int32(pixels), Int32(pixels), pixels,
                                 inputBuffer.baseAddress)
            }
        }
        guard drawn == 0 else { return nil }
        let start = DispatchTime.now().uptimeNanoseconds
        let logits = try model.run(input)
        let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        let largest = logits.max() ?? 0
        let weights = logits.map { exp(Double($0 - largest)) }
        let total = weights.reduce(0, +)
        let top = weights.indices.sorted { weights[$0] > weights[$1] }.prefix(3)
            .map { Prediction(digit: $0, probability: weights[$0] / total) }
        return (top, milliseconds)
    }
}
