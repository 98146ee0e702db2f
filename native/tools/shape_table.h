// The benchmark shape table (bench/shapes.json, the one place S1-S5 and the GPU timing shapes are
// written) for the native tools: bench_recurrent.cc and gpu_check_recurrent.cu read it instead of
// keeping their own copies. The tools take `--shapes FILE` (default bench/shapes.json, relative to
// the repository root the tools are run from). A small reader for the JSON subset that file uses
// (objects, arrays, strings without escapes other than \" and \\, numbers, true/false/null); a
// missing or malformed file is an error with the path and the offset.
#pragma once

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "recurrent.h"

namespace rnnkit_tools {

struct Json {
  enum Kind { null, boolean, number, string, array, object } kind = null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> items;                               // array
  std::vector<std::pair<std::string, Json>> members;     // object, in file order

  const Json* find(const std::string& key) const {
    for (const auto& m : members)
      if (m.first == key) return &m.second;
    return nullptr;
  }
  const Json& at(const std::string& key) const {
    const Json* v = find(key);
    if (!v) throw std::runtime_error("shape table: missing key '" + key + "'");
    return *v;
  }
  int64_t integer(const std::string& key) const {
    const Json& v = at(key);
    if (v.kind != number || v.n != static_cast<double>(static_cast<int64_t>(v.n)))
      throw std::runtime_error("shape table: '" + key + "' is not an integer");
    return static_cast<int64_t>(v.n);
  }
  std::string text(const std::string& key) const {
    const Json& v = at(key);
    if (v.kind != string) throw std::runtime_error("shape table: '" + key + "' is not a string");
    return v.s;
  }
};

class JsonReader {
 public:
  JsonReader(std::string text, std::string where) : t_(std::move(text)), where_(std::move(where)) {}
  Json document() {
    Json v = value();
    space();
    if (i_ != t_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(where_ + ": " + what + " at offset " + std::to_string(i_));
  }
  void space() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\n' || t_[i_] == '\r' || t_[i_] == '\t')) ++i_;
  }
  bool eat(char c) {
    space();
    if (i_ < t_.size() && t_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  std::string str() {
    if (!eat('"')) fail("expected a string");
    std::string out;
    while (i_ < t_.size() && t_[i_] != '"') {
      if (t_[i_] == '\\' && i_ + 1 < t_.size()) ++i_;
      out += t_[i_++];
    }
    if (i_ >= t_.size()) fail("unterminated string");
    ++i_;
    return out;
  }
  Json value() {
    space();
    Json v;
    if (i_ >= t_.size()) fail("unexpected end");
    const char c = t_[i_];
    if (c == '{') {
      ++i_;
      v.kind = Json::object;
      if (eat('}')) return v;
      do {
        std::string key = str();
        if (!eat(':')) fail("expected ':'");
        v.members.emplace_back(std::move(key), value());
      } while (eat(','));
      if (!eat('}')) fail("expected '}'");
    } else if (c == '[') {
      ++i_;
      v.kind = Json::array;
      if (eat(']')) return v;
      do v.items.push_back(value());
      while (eat(','));
      if (!eat(']')) fail("expected ']'");
    } else if (c == '"') {
      v.kind = Json::string;
      v.s = str();
    } else if (t_.compare(i_, 4, "true") == 0 || t_.compare(i_, 5, "false") == 0) {
      v.kind = Json::boolean;
      v.b = t_[i_] == 't';
      i_ += v.b ? 4 : 5;
    } else if (t_.compare(i_, 4, "null") == 0) {
      i_ += 4;
    } else {
      size_t used = 0;
      try {
        v.n = std::stod(t_.substr(i_, 32), &used);
      } catch (const std::exception&) {
        fail("expected a value");
      }
      v.kind = Json::number;
      i_ += used;
    }
    return v;
  }
  std::string t_, where_;
  size_t i_ = 0;
};

// One recurrent timing shape: name as the tools print it, mode name (lstm, gru, rnn_tanh,
// rnn_relu), the GRU form, and T, B, I, H, layers, directions.
struct BenchShape {
  std::string name, mode;
  bool linear_before_reset = true;
  int64_t T = 0, B = 0, I = 0, H = 0, L = 1, D = 1;
};

// The kernel's mode for a table's mode name.
inline rnnkit::RecurrentConfig::Mode mode_named(const std::string& name) {
  using Mode = rnnkit::RecurrentConfig::Mode;
  if (name == "lstm") return Mode::lstm;
  if (name == "gru") return Mode::gru;
  if (name == "rnn_tanh") return Mode::rnn_tanh;
  if (name == "rnn_relu") return Mode::rnn_relu;
  throw std::runtime_error("shape table: unknown mode " + name);
}

inline Json read_shape_table(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read the shape table " + path + " (run from the repository root, or pass --shapes FILE)");
  std::stringstream buf;
  buf << in.rdbuf();
  return JsonReader(buf.str(), path).document();
}

inline BenchShape shape_from(const Json& s, std::string name, std::string mode, bool lbr) {
  BenchShape b;
  b.name = std::move(name);
  b.mode = std::move(mode);
  b.linear_before_reset = lbr;
  b.T = s.integer("T");
  b.B = s.integer("B");
  b.I = s.integer("I");
  b.H = s.integer("H");
  b.L = s.integer("L");
  b.D = s.integer("D");
  return b;
}

// The CPU bench cases in table order: each of recurrentCases as "<shape> <cell>" (bench/shapes.js
// RECURRENT_CASES, the rows of `npm run bench`'s recurrent family).
inline std::vector<BenchShape> recurrent_cases(const Json& table) {
  std::vector<BenchShape> out;
  const Json& shapes = table.at("recurrent");
  const Json& cells = table.at("cells");
  for (const Json& c : table.at("recurrentCases").items) {
    const std::string shape = c.text("shape"), cell = c.text("cell");
    const Json& cfg = cells.at(cell);
    out.push_back(shape_from(shapes.at(shape), shape + " " + cell, cfg.text("mode"), cfg.at("linearBeforeReset").b));
  }
  return out;
}

// The GPU timing shapes in order: S1-S5 as LSTM, then gpuBench (bench/shapes.js gpuBenchShapes()).
inline std::vector<BenchShape> gpu_bench_shapes(const Json& table) {
  std::vector<BenchShape> out;
  for (const auto& m : table.at("recurrent").members) {
    const Json& s = m.second;
    std::string name = m.first + " lstm T" + std::to_string(s.integer("T")) + " B" + std::to_string(s.integer("B")) +
                       " H" + std::to_string(s.integer("H"));
    if (s.integer("L") > 1) name += " L" + std::to_string(s.integer("L"));
    if (s.integer("D") > 1) name += "bi";
    out.push_back(shape_from(s, name, "lstm", true));
  }
  for (const Json& s : table.at("gpuBench").items) out.push_back(shape_from(s, s.text("name"), s.text("mode"), true));
  return out;
}

// `--shapes FILE` from argv (removed from it, so the tool's own parser never sees it), or the default.
inline std::string shapes_path_option(int& argc, char** argv, const char* fallback = "bench/shapes.json") {
  std::string path = fallback;
  for (int k = 1; k < argc; ++k) {
    if (std::string(argv[k]) == "--shapes" && k + 1 < argc) {
      path = argv[k + 1];
      for (int j = k; j + 2 <= argc; ++j) argv[j] = argv[j + 2];
      argc -= 2;
      break;
    }
  }
  return path;
}

}  // namespace rnnkit_tools
