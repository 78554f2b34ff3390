#include "common/output.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/exit.h"
#include "common/options.h"
#include "xsr/source.h"
#include "xsr/units.h"

namespace xsr::cli {
namespace {

// An input no output may be.
struct Noted {
  dev_t dev;
  ino_t ino;
  std::string name;
};

std::vector<Noted>& inputs() {
  static std::vector<Noted> v;
  return v;
}

// Only files whose bytes an output would destroy are compared: a pipe or
// a terminal may well be both ends of a run.
bool guarded(const struct stat& st) { return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode); }

const Noted* same_as_input(const struct stat& st) {
  if (!guarded(st)) return nullptr;
  for (const Noted& n : inputs())
    if (n.dev == st.st_dev && n.ino == st.st_ino) return &n;
  return nullptr;
}

std::string dir_of(const std::string& p) {
  const std::size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : p.substr(0, slash);
}

// The file `path` names once its symlinks are followed; for a new file (a
// dangling link, say) the path the link chain ends at.
std::string resolve(const std::string& path) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf)) return buf;
  std::string p = path;
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p;
    const ssize_t n = ::readlink(p.c_str(), buf, sizeof buf - 1);
    if (n <= 0) return p;
    const std::string t(buf, static_cast<std::size_t>(n));
    p = t[0] == '/' ? t : dir_of(p) + "/" + t;
  }
  return p;
}

// "PATH.xsr-tmp.RANDOM": unique among concurrent runs (the name is created
// with O_EXCL or linked, which fail on EEXIST, and then another is tried).
std::string temp_name(const std::string& target) {
  std::uint64_t r = 0;
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
    r = mono_ns() ^ (static_cast<std::uint64_t>(::getpid()) << 32);
  return target + ".xsr-tmp." + strprintf("%012llx", static_cast<unsigned long long>(r & 0xffffffffffffull));
}

std::string cannot_create(const std::string& name, int e) {
  return "cannot create " + name + ": " + std::strerror(e);
}

// The descriptor of ours a path names (/dev/stdout, /dev/stderr, /dev/fd/N,
// /proc/self/fd/N), or -1. Such a path is that descriptor: written where
// it points (a shell's >> stays an append), never replaced by a rename.
int own_descriptor(const std::string& path) {
  if (path == "/dev/stdout") return 1;
  if (path == "/dev/stderr") return 2;
  for (const char* dir : {"/dev/fd/", "/proc/self/fd/"}) {
    const std::string d = dir;
    if (path.compare(0, d.size(), d) == 0) return parse_fd(path.substr(d.size()));
  }
  return -1;
}

}  // namespace

void note_input(const std::string& spec) {
  struct stat st;
  const int fd = spec == "-" ? 0 : parse_fd(spec);
  if ((fd >= 0 ? ::fstat(fd, &st) : ::stat(spec.c_str(), &st)) != 0 || !guarded(st)) return;
  inputs().push_back({st.st_dev, st.st_ino, display_name(spec, "<stdin>")});
}

void ignore_sigpipe() { ::signal(SIGPIPE, SIG_IGN); }

Output::~Output() {
  if (!done_) abort();
}

bool Output::refuse(const std::string& why, std::string* err) {
  if (owned_ && fd_ >= 0) ::close(fd_);
  fd_ = -1;
  owned_ = false;
  done_ = true;
  *err = why;
  return false;
}

bool Output::open(const std::string& spec, std::string* err, const OutputRules& rules) {
  if (spec != "-" && parse_fd(spec) < 0) return open_file(spec, err, rules);
  return open_fd(spec == "-" ? 1 : parse_fd(spec), display_name(spec, "<stdout>"), err, rules);
}

bool Output::open_fd(int fd, const std::string& name, std::string* err, const OutputRules& rules) {
  fd_ = fd;
  name_ = name;
  struct stat st;
  if (::fstat(fd_, &st) != 0) return refuse("cannot write " + name_ + ": " + std::strerror(errno), err);
  if (const Noted* in = same_as_input(st))
    return refuse(name_ + " is the same file as the input " + in->name + ": refusing to overwrite it", err);
  if (rules.binary && !rules.force && ::isatty(fd_))
    return refuse("refusing to write binary data to a terminal (redirect it or add --force)", err);
  regular_ = S_ISREG(st.st_mode);
  if (regular_) start_ = ::lseek(fd_, 0, SEEK_CUR);
  return true;
}

bool Output::open_file(const std::string& path, std::string* err, const OutputRules& rules) {
  if (const int fd = own_descriptor(path); fd >= 0 && ::fcntl(fd, F_GETFD) >= 0)
    return open_fd(fd, path, err, rules);
  name_ = path;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return refuse(cannot_create(name_, errno), err);
    return open_temp(resolve(path), nullptr, rules.new_mode, err);
  }
  if (const Noted* in = same_as_input(st))
    return refuse(name_ + " is the same file as the input " + in->name + ": refusing to overwrite it", err);
  if (S_ISREG(st.st_mode)) return open_temp(resolve(path), &st, st.st_mode & 07777, err);
  // A device, FIFO or socket: written in place, never replaced.
  fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) return refuse("cannot open " + name_ + ": " + std::strerror(errno), err);
  owned_ = true;
  if (rules.binary && !rules.force && ::isatty(fd_))
    return refuse("refusing to write binary data to a terminal (redirect it or add --force)", err);
  return true;
}

void Output::open_or_die(const std::string& spec, const char* cmd, const OutputRules& rules) {
  std::string err;
  if (!open(spec, &err, rules)) die(kOutput, std::string(cmd) + ": " + err);
}

bool Output::open_temp(const std::string& target, const struct stat* old, mode_t mode, std::string* err) {
  target_ = target;
  if (!std::getenv(kNamedTempEnv)) {
    fd_ = ::open(dir_of(target).c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
    // A file system without O_TMPFILE says so in one of these ways.
    if (fd_ < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
      return refuse(cannot_create(name_, errno), err);
    anon_ = fd_ >= 0;
  }
  int e = EEXIST;
  for (int i = 0; i < 100 && fd_ < 0 && e == EEXIST; ++i) {
    const std::string name = temp_name(target);
    interrupts_held_off([&] {
      fd_ = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
      e = fd_ < 0 ? errno : 0;
      if (fd_ < 0) return;
      tmp_ = name;
      cleanup_.set([name](int) { ::unlink(name.c_str()); });
    });
  }
  if (fd_ < 0) return refuse(cannot_create(name_, e), err);
  owned_ = regular_ = temp_ = true;
  if (old) {
    // The replaced file's owner (when we may give it away) and mode.
    (void)!::fchown(fd_, old->st_uid, old->st_gid);
    (void)!::fchmod(fd_, mode);
  }
  return true;
}

// O_TMPFILE: gives the file a temporary name (then renamed like the other).
// Through /proc (any user), else AT_EMPTY_PATH (needs CAP_DAC_READ_SEARCH).
bool Output::link_into_place(std::string* err) {
  const std::string self = "/proc/self/fd/" + std::to_string(fd_);
  int e = EEXIST;
  for (int i = 0; i < 100 && e == EEXIST; ++i) {
    const std::string name = temp_name(target_);
    int r = ::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW);
    if (r != 0 && errno == ENOENT) r = ::linkat(fd_, "", AT_FDCWD, name.c_str(), AT_EMPTY_PATH);
    e = r == 0 ? 0 : errno;
    if (r != 0) continue;
    tmp_ = name;
    cleanup_.set([name](int) { ::unlink(name.c_str()); });
  }
  if (e) *err = name_ + ": cannot put it in place: " + std::strerror(e);
  return e == 0;
}

bool Output::commit(std::string* err) {
  done_ = true;
  bool ok = true;
  if (!temp_) {
    if (owned_ && fd_ >= 0 && ::close(fd_) != 0) {
      *err = name_ + ": " + std::strerror(errno);
      ok = false;
    }
    fd_ = -1;
    return ok;
  }
  // Held off: an interrupt meanwhile finds the file either in place or
  // still under its temporary name, which it removes.
  interrupts_held_off([&] {
    ok = !anon_ || link_into_place(err);
    if (::close(fd_) != 0 && ok) {
      *err = name_ + ": " + std::strerror(errno);
      ok = false;
    }
    fd_ = -1;
    if (ok && ::rename(tmp_.c_str(), target_.c_str()) != 0) {
      *err = name_ + ": cannot put it in place: " + std::strerror(errno);
      ok = false;
    }
    if (!ok && !tmp_.empty()) ::unlink(tmp_.c_str());
    tmp_.clear();
    cleanup_.reset();
  });
  return ok;
}

void Output::abort() {
  done_ = true;
  if (regular_ && fd_ >= 0 && !owned_) {
    // A file handed over as a descriptor: cut back what this run wrote.
    if (::ftruncate(fd_, start_) == 0) ::lseek(fd_, start_, SEEK_SET);
  }
  interrupts_held_off([&] {
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    tmp_.clear();
    cleanup_.reset();
  });
  if (owned_ && fd_ >= 0) ::close(fd_);  // an O_TMPFILE file goes with it
  fd_ = -1;
}

}  // namespace xsr::cli
