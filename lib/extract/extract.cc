#include "xsr/extract.h"

#include <elf.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "internal.h"
#include "xsr/elf_notes.h"
#include "xsr/format.h"
#include "xsr/pfnset.h"
#include "xsr/reader.h"
#include "xsr/sink.h"

namespace xsr {
namespace {

using u64 = std::uint64_t;

constexpr const char* kElfFailed = "writing the ELF headers failed";

using detail::BatchObserver;

class Extractor final : public BatchObserver {
 public:
  Extractor(Sink& out, u64 base, const ExtractOptions& opt, Source& src)
      : out_(out), base_(base), opt_(opt), src_(src) {}

  Error pages(PageDataReader& pd) override {
    // Each run of consecutive pfns (a whole batch, as Xen's save sends pfns
    // in order) is one call, by the kernel, to the run's offset. A shuffled
    // batch costs a call per page; reading it into memory, sorting and
    // writing with pwritev measured slower here (the kernel's copy from user
    // memory is the slow path of this VM, MEASUREMENTS.md).
    std::size_t i = 0;
    while (i < batch_.size()) {
      // A run: consecutive pfns, all inside or all outside the range.
      const bool in = in_range(batch_[i]);
      std::size_t j = i + 1;
      while (j < batch_.size() && batch_[j] == batch_[j - 1] + 1 && in_range(batch_[j]) == in) ++j;
      const u64 n = j - i;
      if (!in) {
        if (Error e = pd.skip_page_count(n)) return e;
      } else if (Error e = opt_.salvage ? salvage_run(pd, batch_[i], n) : copy_run(pd, batch_[i], n)) {
        return e;
      }
      i = j;
    }
    return {};
  }

  const PfnSet& written() const { return written_; }
  u64 bodies() const { return bodies_; }

 private:
  bool in_range(u64 pfn) const { return pfn >= opt_.first_pfn && pfn <= opt_.last_pfn; }

  // n pages of pfns from pfn on, by the kernel, to their offset.
  Error copy_run(PageDataReader& pd, u64 pfn, u64 n) {
    if (Error e = out_.seek(base_ + pfn * kPageSize, "seeking the output failed")) return e;
    int out_error = 0;
    const char* how = nullptr;
    if (Error e = pd.forward_pages(n, out_.fd(), out_error, how)) return e;
    out_.count_path(how ? how : "write", n * kPageSize);
    written_.insert_range(pfn, n);
    bodies_ += n;
    return {};
  }

  // copy_run for --salvage: only whole pages reach the output, so a cut
  // inside a page leaves the pages before it and nothing of that one. A
  // file says how much is left; from a pipe pages go one at a time through
  // memory (a page only partly there is never handed out).
  Error salvage_run(PageDataReader& pd, u64 pfn, u64 n) {
    const std::int64_t left = src_.remaining();
    if (left >= 0) {
      const u64 whole = std::min<u64>(n, static_cast<u64>(left) / kPageSize);
      if (whole > 0)
        if (Error e = copy_run(pd, pfn, whole)) return e;
      return whole == n ? Error{} : pd.skip_page_count(n - whole);
    }
    for (u64 k = 0; k < n; ++k) {
      Bytes page;
      if (Error e = pd.next_pages(page, 1)) return e;
      if (Error e = out_.write_at(base_ + (pfn + k) * kPageSize, page.data(), page.size(),
                                  "writing the output failed"))
        return e;
      out_.count_path("write", kPageSize);
      written_.insert_range(pfn + k, 1);
      ++bodies_;
    }
    return {};
  }

  Sink& out_;
  u64 base_;
  const ExtractOptions& opt_;
  Source& src_;
  PfnSet written_;
  u64 bodies_ = 0;
};

class PageFinder final : public BatchObserver {
 public:
  PageFinder(u64 pfn, std::array<std::byte, 4096>& page) : pfn_(pfn), page_(page) {}
  Error pages(PageDataReader& pd) override {
    // The last copy in the record wins, as it does across records.
    std::size_t last = batch_.size();
    for (std::size_t i = 0; i < batch_.size(); ++i)
      if (batch_[i] == pfn_) last = i;
    if (last == batch_.size()) return {};
    if (Error e = pd.skip_page_count(last)) return e;
    Bytes run;
    if (Error e = pd.next_pages(run, 1)) return e;
    std::memcpy(page_.data(), run.data(), kPageSize);
    found_ = true;
    return {};
  }
  bool found() const { return found_; }

 private:
  u64 pfn_;
  std::array<std::byte, 4096>& page_;
  bool found_ = false;
};

}  // namespace

Error write_elf_headers(Sink& out, const PfnSet& pfns, u64 base, ExtractResult& res,
                        std::span<const std::byte> notes) {
  std::vector<Elf64_Phdr> ph;
  if (!notes.empty()) ph.push_back(Elf64_Phdr{});  // the PT_NOTE, once its offset is known
  pfns.for_each_run([&](u64 start, u64 count) {
    Elf64_Phdr p{};
    p.p_type = PT_LOAD;
    p.p_flags = PF_R | PF_W | PF_X;
    p.p_offset = base + start * kPageSize;
    p.p_paddr = start * kPageSize;
    p.p_vaddr = p.p_paddr;
    p.p_filesz = p.p_memsz = count * kPageSize;
    p.p_align = kPageSize;
    ph.push_back(p);
  });
  // No segments: no program header table either (e_phoff 0, as the gABI
  // says for a file without one), and the file is the header alone.
  const u64 phoff = pfns.empty() ? 0 : base + (pfns.max() + 1) * kPageSize;
  const u64 phbytes = ph.size() * sizeof(Elf64_Phdr);
  if (!notes.empty()) {
    ph[0].p_type = PT_NOTE;
    ph[0].p_offset = phoff + phbytes;
    ph[0].p_filesz = notes.size();
    ph[0].p_align = 4;
  }
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
  eh.e_type = ET_CORE;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_phoff = phoff;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = ph.size() < PN_XNUM ? static_cast<Elf64_Half>(ph.size()) : PN_XNUM;
  u64 end = ph.empty() ? sizeof eh : phoff + phbytes;
  if (!notes.empty()) {
    if (Error e = out.write_at(end, notes.data(), notes.size(), kElfFailed)) return e;
    end += notes.size();
  }
  if (ph.size() >= PN_XNUM) {
    end = (end + 7) & ~u64{7};  // Elf64_Shdr's alignment
    Elf64_Shdr sh{};
    sh.sh_info = static_cast<Elf64_Word>(ph.size());
    eh.e_shoff = end;
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = 1;
    if (Error e = out.write_at(end, &sh, sizeof sh, kElfFailed)) return e;
    end += sizeof sh;
  }
  if (!ph.empty())
    if (Error e = out.write_at(phoff, ph.data(), phbytes, kElfFailed)) return e;
  if (Error e = out.write_at(0, &eh, sizeof eh, kElfFailed)) return e;
  res.segments = ph.size() - (notes.empty() ? 0 : 1);
  res.out_bytes = end;
  return {};
}

namespace detail {

Error prepare_output(Sink& out) {
  struct stat st;
  if (!fd_caps(out.fd()).has(IoCaps::file) || ::fstat(out.fd(), &st) != 0)
    return Error::at(Errc::unsupported, 0,
                     "the output must be a regular file (pages go at their pfn's offset)");
  // Only a file with bytes in it is emptied: truncating to zero also makes
  // ext4 flush the whole file on close (auto_da_alloc), ~0.7 s a GiB here.
  if (st.st_size > 0) return out.truncate(0, "truncating the output failed");
  return {};
}

Error finish_output(Sink& out, const PfnSet& written, u64 base, bool elf, ExtractResult& res,
                    std::span<const std::byte> notes) {
  if (elf) {
    if (!written.complete())
      return Error::at(Errc::unsupported, 0,
                       "the pfns are too sparse to list as ELF segments; extract raw instead");
    return write_elf_headers(out, written, base, res, notes);
  }
  res.out_bytes = written.empty() ? 0 : (written.max() + 1) * kPageSize;
  return out.truncate(res.out_bytes, "sizing the output failed");
}

std::string paths_text(const Sink& out) {
  std::string s;
  for (const auto& [how, bytes] : out.paths())
    s += (s.empty() ? "" : ", ") + how + strprintf(" %.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return s;
}

}  // namespace detail

ExtractResult extract(Source& src, int out_fd, const ExtractOptions& opt) {
  ExtractResult res;
  Sink out(out_fd);
  if ((res.error = detail::prepare_output(out))) return res;
  const u64 base = opt.elf ? kPageSize : 0;
  Extractor x(out, base, opt, src);
  VcpuObserver vcpus(x);  // the registers for the core's notes
  VerifyOptions vo;
  vo.format = Format::autodetect;
  vo.observer = opt.elf ? static_cast<StreamObserver*>(&vcpus) : &x;
  vo.progress = opt.progress;
  res.error = verify(src, vo, res.stats);
  res.bodies = x.bodies();
  res.pfns = x.written().size();
  res.paths = detail::paths_text(out);
  // --salvage: the pages before the damage make an output too; the error
  // stays the run's verdict. An output that failed salvages nothing.
  if (res.error && (!opt.salvage || res.error.code == Errc::output)) return res;
  const std::vector<std::byte> notes =
      opt.elf ? core_notes(vcpus.states(), res.stats, x.written()) : std::vector<std::byte>{};
  Error fin = detail::finish_output(out, x.written(), base, opt.elf, res, notes);
  if (res.error) {
    res.salvaged = !fin;
    return res;
  }
  res.error = fin;
  return res;
}

Error read_core_state(Source& src, CoreState& core) {
  StreamObserver none;
  VcpuObserver vcpus(none);
  VerifyOptions vo;
  vo.format = Format::autodetect;
  vo.observer = &vcpus;
  Error e = verify(src, vo, core.stats);
  core.vcpus = vcpus.states();
  return e;
}

bool extract_page(Source& src, u64 pfn, std::array<std::byte, 4096>& page, ExtractResult& res) {
  PageFinder f(pfn, page);
  VerifyOptions vo;
  vo.format = Format::autodetect;
  vo.observer = &f;
  res.error = verify(src, vo, res.stats);
  return !res.error && f.found();
}

std::string hexdump_page(u64 pfn, const std::array<std::byte, 4096>& page) {
  std::string o;
  const u64 base = pfn * kPageSize;
  bool starred = false;
  for (std::size_t off = 0; off < page.size(); off += 16) {
    const std::byte* l = page.data() + off;
    if (off > 0 && std::memcmp(l, l - 16, 16) == 0) {
      if (!starred) o += "*\n";
      starred = true;
      continue;
    }
    starred = false;
    o += strprintf("%08llx ", static_cast<unsigned long long>(base + off));
    for (int i = 0; i < 16; ++i) {
      if (i % 8 == 0) o += ' ';
      o += strprintf("%02x ", static_cast<unsigned>(l[i]));
    }
    o += " |";
    for (int i = 0; i < 16; ++i) {
      const auto c = static_cast<unsigned char>(l[i]);
      o += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '.';
    }
    o += "|\n";
  }
  o += strprintf("%08llx\n", static_cast<unsigned long long>(base + page.size()));
  return o;
}

}  // namespace xsr
