// A square canvas to draw a digit in, Classify / Clear, and the model's top three.
import Bmxnet
import SwiftUI

struct ContentView: View {
    @State private var strokes: [[CGPoint]] = []
    @State private var drawing = false
    @State private var result = "Draw a digit (0-9), as large as the square."
    @State private var classifier: Result<DigitClassifier, Error>?

    private let canvasSide: CGFloat = 280
    // about a tenth of the digit's height, like the strokes of the training digits
    private let lineWidth: CGFloat = 22

    var body: some View {
        VStack(spacing: 16) {
            Text("bmxnet digits").font(.title2)
            canvas
            HStack(spacing: 24) {
                Button("Classify", action: classify).disabled(strokes.isEmpty)
                Button("Clear") {
                    strokes = []
                    result = "Draw a digit (0-9), as large as the square."
                }
            }
            Text(result).font(.system(.body, design: .monospaced))
                .frame(maxWidth: .infinity, alignment: .leading)
            Spacer()
        }
        .padding()
        .onAppear(perform: load)
    }

    private var canvas: some View {
        Canvas { context, _ in
            for stroke in strokes where !stroke.isEmpty {
                var path = Path()
                path.move(to: stroke[0])
                path.addLine(to: stroke.count > 1 ? stroke[1] : stroke[0])
                for point in stroke.dropFirst(2) { path.addLine(to: point) }
                context.stroke(path, with: .color(.white),
                               style: StrokeStyle(lineWidth: lineWidth, lineCap: .round,
                                                  lineJoin: .round))
            }
        }
        .frame(width: canvasSide, height: canvasSide)
        .background(Color.black)
        .gesture(DragGesture(minimumDistance: 0)
            .onChanged { value in
                if drawing {
                    strokes[strokes.count - 1].append(value.location)
                } else {
                    strokes.append([value.location])
                    drawing = true
                }
            }
            .onEnded { _ in drawing = false })
    }

    private func load() {
        guard classifier == nil else { return }
        classifier = Result { try DigitClassifier() }
        if case .failure(let error) = classifier {
            result = "Cannot load the model:\n\(error)"
        }
    }

    private func classify() {
        guard case .success(let model) = classifier else { return }
        let pixels = 280
        let ink = DigitClassifier.render(strokes: strokes, canvasSide: canvasSide,
                                         lineWidth: lineWidth, pixels: pixels)
        do {
            guard let outcome = try model.classify(ink: ink, pixels: pixels) else {
                result = "The canvas is empty."
                return
            }
            result = outcome.top.enumerated().map { rank, p in
                String(format: "%ld. digit %ld  %5.1f %%", rank + 1, p.digit, 100 * p.probability)
            }.joined(separator: "\n") + String(format: "\n\n%.3f ms (runtime %@)",
                                               outcome.milliseconds, BmxnetModel.runtimeVersion)
        } catch {
            result = "Inference failed:\n\(error)"
        }
    }
}
