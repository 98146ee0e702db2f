// Step-net engine (Caffe2's RecurrentNetwork / RecurrentNetworkGradient / RNNApplyLink / offset
// aliases / RecurrentNetworkBlobFetcher): a small graph of built-in row-wise ops over named blobs,
// compiled once, then run natively over T steps, forward and backward.
//
// Blobs. Every per-step blob is a row-major [W, B, D] block (W = window, 1 unless it comes from a
// windowed link): ops see it as W·B rows of D features. Parameters are whole tensors shared by all
// steps. Externals are sequences: inputs [T_in, B, D] and recurrent states [T + k, B, D] whose
// first k slots hold the initial value (k = init_steps).
// Links. internal = external[t + offset … t + offset + window) at step t, a pointer into the
//   external (zero copy). A link whose internal blob an op writes is the state's write link: it
//   must have window 1 and offset k (step t writes slot t + k). Reads of a state must lie in slots
//   already written: offset + window <= k. Input links need T_in >= T + offset + window − 1.
// Sequence lengths (optional, B values in 0..T): at steps t >= len[b] row b of every state keeps
//   its previous value (the step's result for that row is replaced by slot t + k − 1) and the
//   per-step aliases show zero for it, as in the fused Recurrent op.
// Aliases (src = a state, offset): offset >= 0 exposes slots offset … T+k−1 (steps past a row's
//   length read zero); offset < 0 exposes the last −offset slots as they stand (the final states).
// Timestep: a [1, B, 1] blob (named by NetSpec::timestep) holding t, readable by any op; it has no
//   gradient.
// Gradient. backward() derives each op's backward, runs BPTT t = T−1 … 0, accumulates parameter
//   gradients over steps, carries state gradients across steps (through the length masks), adds
//   the alias gradients in, and returns the gradients of the inputs, the initial states (summed
//   over k and over the batch for the broadcast ranks) and the parameters. Every gradient output
//   is overwritten (`=`).
// Recompute. Blobs listed in NetSpec::recompute (with every other output of their producing op)
//   keep one buffer instead of one per step; backward re-runs their ops per step. Such ops may not
//   write states, and the fetcher cannot return their values.
// Speed. Ops whose inputs depend only on input sequences (not on states) are hoisted: run once
//   over all T·B rows before the loop (and their backward once after it), as the fused op does
//   with its input projection. In-loop fc weight gradients whose operands are contiguous over the
//   steps are deferred to one GEMM after the loop; in-loop fc weights are packed once per call.
// Executor. Executor::wavefront runs the (step, op) task graph on the compute pool with a small
//   ready-queue scheduler so that independent work of different steps overlaps (layer 2 at step
//   t beside layer 1 at step t+1); Executor::sequential runs step by step with each kernel using
//   the pool itself; Executor::automatic picks the wavefront when the graph is wide enough.
// Errors: compile() throws rnnkit::Error (arg for structure, shape for sizes) naming the blob;
//   forward/backward/fetch throw rnnkit::Error for bad sizes or arguments.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rnnkit {
namespace stepnet {

struct InputSpec {
  std::string name;
  int64_t size = 0;
};
struct StateSpec {
  std::string name;
  int64_t size = 0;
  int64_t init_steps = 1;
};
struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
};
struct LinkSpec {
  std::string internal, external;
  int64_t offset = 0, window = 1;
};
// type: fc | matmul | add | sub | mul | sigmoid | tanh | relu | concat | slice | split | copy |
//   lstmUnit | gruUnit | rmsNorm. axis: 1 = features (default), 0 = window (concat/slice/split).
//   slice: [start, end) along axis; split: sizes (empty: equal parts). gruUnit: linear_before_reset.
struct OpSpec {
  std::string type;
  std::vector<std::string> inputs, outputs;
  int64_t axis = 1;
  int64_t start = 0, end = 0;
  std::vector<int64_t> sizes;
  float eps = 1e-6f;
  bool linear_before_reset = true;
};
struct AliasSpec {
  std::string src, dst;
  int64_t offset = 0;
};
struct NetSpec {
  std::vector<InputSpec> inputs;
  std::vector<StateSpec> states;
  std::vector<ParamSpec> params;
  std::vector<LinkSpec> links;
  std::vector<OpSpec> ops;
  std::vector<AliasSpec> aliases;
  std::vector<std::string> recompute;
  std::string timestep = "timestep";
};

struct BlobInfo {
  std::string name;
  std::string kind;  // input_link | state_read | state_write | step | param | timestep
  int64_t window = 1, size = 0;
  bool stored = true;   // per-step values kept (fetchable)
  bool hoisted = false; // computed over all steps at once
};

class Net;
std::shared_ptr<const Net> compile(const NetSpec& spec);
const NetSpec& spec_of(const Net& net);
std::vector<BlobInfo> blob_infos(const Net& net);
// Slots exposed by alias i for T steps.
int64_t alias_slots(const Net& net, size_t i, int64_t T);
// True when the forward task graph has enough independent work across steps for the wavefront.
bool prefers_wavefront(const Net& net);

enum class Executor { automatic, sequential, wavefront };

struct ForwardArgs {
  int64_t T = 0, B = 0;
  std::vector<const float*> inputs;  // per InputSpec: [input_steps[i], B, size]
  std::vector<int64_t> input_steps;
  std::vector<const float*> inits;   // per StateSpec: null (zeros) or rank init_ranks[i]
  std::vector<int> init_ranks;       // 1 [D], 2 [B, D], 3 [k, B, D]
  std::vector<const float*> params;  // per ParamSpec
  const int32_t* seq_lengths = nullptr;
  std::vector<float*> alias_out;     // per AliasSpec: [alias_slots, B, size]
  Executor executor = Executor::automatic;
};

struct BackwardArgs {
  std::vector<const float*> inputs, params;  // as in the forward
  std::vector<const float*> alias_grads;     // per alias; null = zero
  std::vector<float*> d_inputs;              // per input, its shape
  std::vector<float*> d_inits;               // per state, the init's shape (rank as forward)
  std::vector<float*> d_params;              // per param
  Executor executor = Executor::automatic;
};

// What a forward keeps: every state sequence and stored per-step blob. Immutable after the
// forward; backward allocates its gradient buffers itself, so one workspace may serve several
// backward calls (sequentially or at once).
class Workspace;
std::shared_ptr<Workspace> forward(const Net& net, const ForwardArgs& args);
void backward(const Net& net, const Workspace& ws, const BackwardArgs& args);
int64_t workspace_steps(const Workspace& ws);
int64_t workspace_batch(const Workspace& ws);
// Floats of working memory a forward of T steps and batch B allocates (its workspace and packed
// weights), and a backward of it on top; computed in double, so that absurd sizes compare as
// large instead of wrapping. The binding checks them against the allocation limit first.
struct WorkspaceSize {
  double forward = 0, backward = 0;
};
WorkspaceSize workspace_size(const Net& net, int64_t T, int64_t B);
// Per state: the rank of the forward's initial value (0 = zeros).
const std::vector<int>& workspace_init_ranks(const Workspace& ws);
// Copies blob `name` at `step` ([W, B, D] floats) into out.
void fetch(const Net& net, const Workspace& ws, const std::string& name, int64_t step, float* out);
// The executor a call with `e` runs.
Executor resolve_executor(const Net& net, Executor e);

}  // namespace stepnet
}  // namespace rnnkit
