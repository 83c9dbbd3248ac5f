// BmxnetModel: a binarized model (the two files model_converter writes) on the bmxnet runtime,
// a thin layer over the C API of mobile/runtime/include/bmxnet/runtime.h (module CBmxnet).
//
//     let model = try BmxnetModel(symbolJSON: symbolData, params: paramsData,
//                                 inputShape: [1, 1, 28, 28])
//     let logits = try model.run(pixels)        // 784 floats in, 10 out
//
// Ownership: a BmxnetModel owns one bmx_model and one bmx_predictor and frees both when it is
// deinitialised (ARC); the Data / paths passed in are only read during init.
// Threads: one inference at a time per object (a lock serialises run, as the C header requires
// of a predictor); threads may share one model and take turns. For inferences in parallel,
// create one BmxnetModel per thread, or pass numThreads to split each inference.
// Errors: every failure of the runtime throws BmxnetError with the C status name and
// bmx_last_error(), the runtime's message naming the problem and the fix; a wrong input length
// is the runtime's BMX_ERROR_INVALID_ARGUMENT too.
import CBmxnet
import Foundation

public struct BmxnetError: Error, CustomStringConvertible {
    /// The C status name, e.g. "BMX_ERROR_FORMAT".
    public let status: String
    /// The runtime's message (bmx_last_error()).
    public let message: String

    public init(status: String, message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status): \(message)" }

    /// The error of the call that just returned `status` on this thread.
    static func last(_ status: bmx_status) -> BmxnetError {
        BmxnetError(status: String(cString: bmx_status_name(status)),
                    message: String(cString: bmx_last_error()))
    }
}

public final class BmxnetModel {
    public let inputName: String
    /// The input shape the model was compiled for, e.g. [1, 1, 28, 28].
    public let inputShape: [Int]
    /// The shape of output 0, what run returns.
    public let outputShape: [Int]
    public let numThreads: Int

    private let model: OpaquePointer
    private let predictor: OpaquePointer
    private let outputCount: Int
    private let lock = NSLock()

    /// Loads from the symbol json and params files.
    /// - Parameters:
    ///   - inputName: the model's data input (usually "data"); the model must have exactly one
    ///   - inputShape: its shape (the files do not record it)
    ///   - numThreads: threads per inference (1; <= 0: one per core)
    ///   - kernelPath: "auto", or "reference", "scalar", "neon", ...
    public convenience init(symbolPath: String, paramsPath: String, inputName: String = "data",
                            inputShape: [Int], numThreads: Int = 1,
                            kernelPath: String = "auto") throws {
        let options = try BmxnetModel.options(inputName, inputShape, numThreads, kernelPath)
        defer { bmx_options_free(options) }
        var model: OpaquePointer?
        let status = bmx_model_load_files(symbolPath, paramsPath, options, &model)
        guard status == BMX_OK, let loaded = model else { throw BmxnetError.last(status) }
        try self.init(adopting: loaded, numThreads: numThreads)
    }

    /// Loads from memory: the contents of the two files (e.g. bundle resources).
    public convenience init(symbolJSON: Data, params: Data, inputName: String = "data",
                            inputShape: [Int], numThreads: Int = 1,
                            kernelPath: String = "auto") throws {
        let options = try BmxnetModel.options(inputName, inputShape, numThreads, kernelPath)
        defer { bmx_options_free(options) }
        var model: OpaquePointer?
        let status = symbolJSON.withUnsafeBytes { json in
            params.withUnsafeBytes { weights in
                bmx_model_load_buffers(json.baseAddress?.assumingMemoryBound(to: CChar.self),
                                       json.count, weights.baseAddress, weights.count, options,
                                       &model)
            }
        }
        guard status == BMX_OK, let loaded = model else { throw BmxnetError.last(status) }
        try self.init(adopting: loaded, numThreads: numThreads)
    }

    /// Takes ownership of a loaded model: makes its predictor, reads its shapes.
    private init(adopting model: OpaquePointer, numThreads: Int) throws {
        guard bmx_model_num_inputs(model) == 1, bmx_model_num_outputs(model) >= 1 else {
            let count = bmx_model_num_inputs(model)
            bmx_model_free(model)
            throw BmxnetError(status: "BMX_ERROR_INVALID_ARGUMENT",
                              message: "BmxnetModel runs models with exactly one data input " +
                                       "and an output; this one has \(count) inputs (use the " +
                                       "C API for several)")
        }
        var predictor: OpaquePointer?
        let status = bmx_predictor_create(model, &predictor)
        guard status == BMX_OK, let created = predictor else {
            let error = BmxnetError.last(status)
            bmx_model_free(model)
            throw error
        }
        self.model = model
        self.predictor = created
        self.numThreads = numThreads
        inputName = String(cString: bmx_model_input_name(model, 0))
        inputShape = BmxnetModel.shape(model, output: false)
        outputShape = BmxnetModel.shape(model, output: true)
        outputCount = outputShape.reduce(1, *)
    }

    deinit {
        bmx_predictor_free(predictor)
        bmx_model_free(model)
    }

    /// One inference: input 0 (C order, inputShape's element count) in, output 0 out.
    public func run(_ input: [Float]) throws -> [Float] {
        lock.lock()
        defer { lock.unlock() }
        var output = [Float](repeating: 0, count: outputCount)
        let status = cbmx_run(predictor, input, input.count, &output, output.count)
        guard status == BMX_OK else { throw BmxnetError.last(status) }
        return output
    }

    /// "MAJOR.MINOR.PATCH" of the runtime linked.
    public static var runtimeVersion: String { String(cString: bmx_version()) }

    private static func options(_ inputName: String, _ inputShape: [Int], _ numThreads: Int,
                                _ kernelPath: String) throws -> OpaquePointer {
        var created: OpaquePointer?
        let status = bmx_options_create(&created)
        guard status == BMX_OK, let options = created else { throw BmxnetError.last(status) }
        let dims = inputShape.map { Int64($0) }
        let steps: [() -> bmx_status] = [
            { bmx_options_set_input_shape(options, inputName, Int32(dims.count), dims) },
            { bmx_options_set_num_threads(options, Int32(clamping: numThreads)) },
            { bmx_options_set_kernel_path(options, kernelPath) },
        ]
        for step in steps {
            let status = step()
            if status != BMX_OK {
                let error = BmxnetError.last(status)
                bmx_options_free(options)
                throw error
            }
        }
        return options
    }

    /// Shape of input or output 0 (both exist: checked when the model was adopted).
    private static func shape(_ model: OpaquePointer, output: Bool) -> [Int] {
        var ndim: Int32 = 0
        var dims: UnsafePointer<Int64>?
        let status = output ? bmx_model_output_shape(model, 0, &ndim, &dims)
                            : bmx_model_input_shape(model, 0, &ndim, &dims)
        guard status == BMX_OK, let values = dims else { return [] }
        return (0..<Int(ndim)).map { Int(values[$0]) }
    }
}
