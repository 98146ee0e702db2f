#include "file_store.h"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "deadline.h"
#include "dist_error.h"

namespace rnnkit {
namespace dist {

namespace {

constexpr const char* kKeyPrefix = "key-";
constexpr const char* kTmpPrefix = "tmp-";

std::string Hex(const std::string& s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

void MakeDirectories(const std::string& path) {
  for (size_t i = 1; i <= path.size(); i++) {
    if (i != path.size() && path[i] != '/') continue;
    std::string prefix = path.substr(0, i);
    if (::mkdir(prefix.c_str(), 0777) != 0 && errno != EEXIST) {
      throw DistError("cannot create the rendezvous directory " + prefix + ": " + std::strerror(errno));
    }
  }
}

bool ReadFile(const std::string& path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream s;
  s << f.rdbuf();
  out = s.str();
  return true;
}

}  // namespace

FileStore::FileStore(const std::string& directory) : directory_(directory) {
  if (directory_.empty()) throw DistError("the file rendezvous path is empty", kArgCode);
  MakeDirectories(directory_);
}

std::string FileStore::KeyPath(const std::string& key) const { return directory_ + "/" + kKeyPrefix + Hex(key); }

void FileStore::WriteAtomically(const std::string& path, const std::string& value) {
  std::string tmp = directory_ + "/" + kTmpPrefix + std::to_string(::getpid()) + "-" +
                    std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(value.data(), static_cast<std::streamsize>(value.size()));
    if (!f) throw DistError("cannot write " + tmp + " in the rendezvous directory");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    throw DistError("cannot rename " + tmp + ": " + std::strerror(errno));
  }
}

void FileStore::Set(const std::string& key, const std::string& value) { WriteAtomically(KeyPath(key), value); }

std::string FileStore::Get(const std::string& key, std::chrono::milliseconds timeout) {
  Deadline deadline = DeadlineAfter(timeout);
  const std::string path = KeyPath(key);
  int pause_ms = 1;
  for (;;) {
    std::string value;
    if (ReadFile(path, value)) return value;
    if (MillisLeft(deadline) == 0) throw DistError("rendezvous directory " + directory_ + ": timed out waiting for " + key);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(pause_ms, MillisLeft(deadline) + 1)));
    pause_ms = std::min(pause_ms * 2, 20);
  }
}

int64_t FileStore::Add(const std::string& key, int64_t delta) {
  const std::string lock_path = directory_ + "/lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) throw DistError("cannot open " + lock_path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX) != 0) {
    ::close(fd);
    throw DistError("cannot lock " + lock_path + ": " + std::strerror(errno));
  }
  int64_t sum = delta;
  try {
    std::string current;
    if (ReadFile(KeyPath(key), current) && !current.empty()) sum += std::stoll(current);
    WriteAtomically(KeyPath(key), std::to_string(sum));
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  return sum;
}

std::vector<bool> FileStore::Check(const std::vector<std::string>& keys) {
  std::vector<bool> out;
  for (const std::string& k : keys) {
    struct stat st;
    out.push_back(::stat(KeyPath(k).c_str(), &st) == 0);
  }
  return out;
}

void FileStore::RemoveKeysWithPrefix(const std::string& prefix) {
  const std::string file_prefix = std::string(kKeyPrefix) + Hex(prefix);
  DIR* d = ::opendir(directory_.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(file_prefix, 0) == 0) ::unlink((directory_ + "/" + name).c_str());
  }
  ::closedir(d);
}

}  // namespace dist
}  // namespace rnnkit
