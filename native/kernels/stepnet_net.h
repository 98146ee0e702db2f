// Internal to the step-net engine (contract: stepnet.h): the compiled net (blobs, ops, the loop
// and the hoisted part), the workspace of one forward, and the DAG runner of the wavefront
// executor. Compiler: stepnet_compile.cc; executor (workspace, op kernels, forward, backward, the
// blob fetcher): stepnet_exec.cc; run_dag: stepnet_dag.cc.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "errors.h"
#include "host_cache.h"
#include "stepnet.h"

namespace rnnkit {
namespace stepnet {

enum class BlobKind { input_link, state_read, state_write, step, param, timestep };
enum class OpType { fc, add, sub, mul, sigmoid, tanh, relu, concat, slice, split, copy,
                    lstm_unit, gru_unit, rms_norm };

struct Blob {
  std::string name;
  BlobKind kind = BlobKind::step;
  int ext = -1;          // input / state / param index
  int64_t offset = 0;    // links
  int64_t W = 1, D = 0;  // per-step shape [W, B, D]
  int producer = -1;     // op index (step and state_write blobs)
  std::vector<int> consumers;
  bool recompute = false;
  bool hoisted = false;
};

struct Op {
  OpType type;
  std::string label;  // "op #i (type)" for messages
  int spec_index = 0;
  std::vector<int> in, out;
  int64_t axis = 1;
  std::vector<int64_t> piece_start, piece_len;  // concat / slice / split, in axis units
  float eps = 1e-6f;
  bool lbr = true;
  int64_t aux_cols = 0;     // per-row scratch the backward needs
  bool hoisted = false;
  bool recompute = false;   // re-run per step by the backward
  bool defer_params = false;
  std::vector<int> param_grads;  // params whose gradients this op accumulates itself
};

class Net {
 public:
  NetSpec spec;
  std::vector<Blob> blobs;
  std::unordered_map<std::string, int> by_name;
  std::vector<Op> ops;             // topological order
  std::vector<int> hoisted, loop;  // op indices, topological
  std::vector<int> loop_pos;       // op index -> position in `loop` (-1 when hoisted)
  std::vector<int> state_writer;   // per state: op index
  std::vector<int> state_blob;     // per state: its state_write blob
  int timestep_blob = -1;
  bool has_recompute = false;
  bool wide = false;
};

// The step net's per-call working memory (forward slabs, states, gradient slabs) is HostFloats
// (host_cache.h): blocks of a megabyte or more come back already faulted in from the previous call
// instead of fresh pages (as std::vector, page faults and the kernel's page clearing had been 18%
// of an LSTM S1 step-net forward).
using CachedFloats = HostFloats;

class Workspace {
 public:
  int64_t T = 0, B = 0;
  std::vector<int32_t> lens;               // empty: all T
  std::vector<CachedFloats> seq;           // per state [T + k, B, D]
  std::vector<CachedFloats> slab;          // per blob: step blobs [T, W, B, D] (or one step)
  std::vector<CachedFloats> aux;           // per op: [T, W·B, aux_cols] (or one step)
  std::vector<float> ts;                   // [T, B]
  std::vector<int64_t> input_elems;        // per input: floats the caller passed
  std::vector<int> init_ranks;             // per state: 0 (zeros), 1, 2 or 3
  bool masked(int64_t t, int64_t b) const { return !lens.empty() && t >= lens[b]; }
};

[[noreturn]] inline void fail(ErrorCode code, const std::string& msg) { throw Error(code, msg); }

inline std::string shape_str(const Blob& b) {
  return "[" + std::to_string(b.W) + ", B, " + std::to_string(b.D) + "]";
}

// Runs tasks 0..n-1 whose dependencies are given as predecessor lists, on up to `threads` pool
// threads; a ready task with the lowest id runs first (ids follow the sequential order, so the
// oldest step, the critical path, goes first).
void run_dag(const std::vector<std::vector<int32_t>>& preds, const std::function<void(int32_t)>& task);
// Adds p to a predecessor list once.
void add_pred(std::vector<int32_t>& preds, int32_t p);

}  // namespace stepnet
}  // namespace rnnkit
