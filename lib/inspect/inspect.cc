#include "xsr/inspect.h"

#include "hvm_context.h"
#include "xsr/units.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>

#include "xsr/format.h"
#include "xsr/records.h"
#include "xsr/report_json.h"

namespace xsr {
namespace {

using u32 = std::uint32_t;
using u64 = std::uint64_t;

std::string hex(u64 v) { return strprintf("0x%llx", static_cast<unsigned long long>(v)); }
std::string num(u64 v) { return std::to_string(v); }

std::string emulator_label(u32 id) {
  switch (id) {
    case libxl::kEmuQemuTrad: return "qemu-traditional";
    case libxl::kEmuQemuUpstream: return "qemu-xen";
    default: return "unknown";
  }
}

// One --records element of the JSON document, on one line.
std::string json_line(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string pv_vcpu_record(u32 type) { return record_name(Layer::libxc, type); }

// Collects the report from the verifier's calls.
class Collector final : public StreamObserver {
 public:
  Collector(const InspectOptions& opt, InspectReport& rep) : opt_(opt), rep_(rep) {}

  void header(HeaderKind kind, u64 off, u64 len) override {
    const std::string_view what = header_name(kind);
    if (kind == HeaderKind::xl || kind == HeaderKind::libvirt) {
      rep_.config_kind = kind == HeaderKind::xl ? "xl" : "libvirt";
      rep_.config_bytes = len - (kind == HeaderKind::xl ? sizeof(xl::Header) : sizeof(libvirt::Header));
    }
    if (!opt_.record_line) return;
    std::string layer = kind == HeaderKind::libxl                               ? "libxl"
                        : kind == HeaderKind::xl || kind == HeaderKind::libvirt ? "-"
                                                                                : "libxc";
    if (opt_.records_json)
      opt_.record_line(json_line({{"offset", off}, {"layer", layer}, {"type", what}, {"length", len}}));
    else
      opt_.record_line(strprintf("0x%010llx  %-5s  %-28s %llu", static_cast<unsigned long long>(off),
                                 layer.c_str(), std::string(what).c_str(),
                                 static_cast<unsigned long long>(len)));
  }

  void config(std::span<const std::byte> chunk) override {
    const std::size_t room = opt_.max_config > rep_.config.size() ? opt_.max_config - rep_.config.size() : 0;
    rep_.config.append(reinterpret_cast<const char*>(chunk.data()), std::min(room, chunk.size()));
  }

  void pfns(std::span<const std::byte> chunk) override {
    const std::size_t n = chunk.size() / 8;
    batch_entries_ += n;
    for (std::size_t i = 0; i < n;) {
      const u64 e = load<u64>(chunk.data() + 8 * i);
      if (!PfnEntry{e}.has_data()) {
        ++batch_no_data_;
        ++i;
        continue;
      }
      // A run of entries with the same type and consecutive pfns (Xen's
      // save sends pfns in order) goes into the set a word at a time.
      std::size_t j = i + 1;
      while (j < n && load<u64>(chunk.data() + 8 * j) == e + (j - i)) ++j;
      const u64 pfn = PfnEntry{e}.pfn(), count = j - i;
      batch_pages_ += count;
      rep_.pfns.insert_range(pfn, count, &on_resent_);
      i = j;
    }
  }

  void record(Layer layer, u32 type, u64 off, u64 len, std::span<const std::byte> body) override {
    if (layer == Layer::libxc) libxc_record(type, off, len, body);
    else libxl_record(type, len, body);
    if (opt_.record_line) record_line(layer, type, off, len);
    // Entries count once their record passed (the pfn sets cannot wait).
    rep_.entries += batch_entries_;
    rep_.no_data += batch_no_data_;
    batch_entries_ = batch_pages_ = batch_no_data_ = 0;
  }

 private:
  void record_line(Layer layer, u32 type, u64 off, u64 len) {
    const bool pd = layer == Layer::libxc && type == libxc::PAGE_DATA;
    const std::string name = record_name(layer, type);
    const char* lname = layer == Layer::libxc ? "libxc" : "libxl";
    if (opt_.records_json) {
      nlohmann::ordered_json j{
          {"offset", off}, {"layer", lname}, {"type", name}, {"type_id", type}, {"length", len}};
      if (pd) {
        j["pfns"] = batch_entries_;
        j["pages"] = batch_pages_;
      }
      opt_.record_line(json_line(j));
      return;
    }
    std::string l = strprintf("0x%010llx  %-5s  %-28s %llu", static_cast<unsigned long long>(off), lname,
                              name.c_str(), static_cast<unsigned long long>(len));
    if (pd)
      l += strprintf("  (%llu pfns, %llu pages)", static_cast<unsigned long long>(batch_entries_),
                     static_cast<unsigned long long>(batch_pages_));
    opt_.record_line(l);
  }

  void libxc_record(u32 type, u64 off, u64 len, std::span<const std::byte> b) {
    const bool whole = b.size() == len;
    rep_.vcpu_state.record(type, b, whole);
    switch (type) {
      case libxc::X86_PV_INFO:
        if (b.size() >= sizeof(libxc::X86PvInfo)) {
          const auto i = load<libxc::X86PvInfo>(b.data());
          rep_.pv_width_bits = i.guest_width * 8u;
          rep_.pt_levels = i.pt_levels;
        }
        break;
      case libxc::X86_PV_P2M_FRAMES:
        if (b.size() >= sizeof(libxc::X86PvP2mFrames)) {
          const auto f = load<libxc::X86PvP2mFrames>(b.data());
          rep_.p2m = std::make_pair(f.start_pfn, f.end_pfn);
        }
        break;
      case libxc::X86_PV_VCPU_BASIC:
      case libxc::X86_PV_VCPU_EXTENDED:
      case libxc::X86_PV_VCPU_XSAVE:
      case libxc::X86_PV_VCPU_MSRS:
        if (b.size() >= 4) rep_.vcpus[load<u32>(b.data())].insert(pv_vcpu_record(type));
        break;
      case libxc::SHARED_INFO: rep_.shared_info = true; break;
      case libxc::X86_TSC_INFO:
        if (b.size() >= sizeof(libxc::X86TscInfo)) {
          const auto t = load<libxc::X86TscInfo>(b.data());
          rep_.tsc = InspectReport::Tsc{t.mode, t.khz, t.incarnation, t.nsec};
        }
        break;
      case libxc::HVM_CONTEXT: decode_hvm_context(b, off, len, whole, rep_); break;
      case libxc::HVM_PARAMS:
        if (whole && b.size() >= sizeof(libxc::HvmParamsHeader)) {
          const u64 n = std::min<u64>(load<u32>(b.data()), (b.size() - 8) / sizeof(libxc::HvmParam));
          for (u64 i = 0; i < n; ++i) {
            const auto p = load<libxc::HvmParam>(b.data() + 8 + i * sizeof(libxc::HvmParam));
            rep_.hvm_params[p.index] = p.value;
          }
        }
        break;
      case libxc::X86_CPUID_POLICY: rep_.cpuid_leaves = len / libxc::kCpuidLeafSize; break;
      case libxc::X86_MSR_POLICY: rep_.msr_entries = len / libxc::kMsrEntrySize; break;
      default: break;
    }
  }

  void libxl_record(u32 type, u64 len, std::span<const std::byte> b) {
    switch (type) {
      case libxl::EMULATOR_XENSTORE_DATA:
      case libxl::EMULATOR_CONTEXT:
        if (b.size() >= sizeof(libxl::EmulatorHeader)) {
          const auto h = load<libxl::EmulatorHeader>(b.data());
          rep_.emulators.push_back(
              {record_name(Layer::libxl, type), emulator_label(h.id), h.index, len - sizeof h});
        }
        break;
      case libxl::CHECKPOINT_STATE: ++rep_.checkpoint_states; break;
      default: break;
    }
  }

  const InspectOptions& opt_;
  InspectReport& rep_;
  u64 batch_entries_ = 0, batch_pages_ = 0, batch_no_data_ = 0;  // of the PAGE_DATA being read
  // A page body for a pfn that had one already.
  std::function<void(u64)> on_resent_ = [this](u64 pfn) {
    ++rep_.resends;
    rep_.resent.insert(pfn);
  };
};

// Gaps between the lowest and highest pfn.
void find_holes(const InspectOptions& opt, InspectReport& rep) {
  u64 next = 0;
  bool first = true;
  rep.pfns.for_each_run([&](u64 start, u64 count) {
    if (!first && start > next) {
      ++rep.hole_count;
      rep.hole_pfns += start - next;
      if (rep.holes.size() < opt.max_holes) rep.holes.emplace_back(next, start - 1);
    }
    first = false;
    next = start + count;
  });
}

std::string guest_name(const StreamStats& st) {
  switch (st.domain_type) {
    case libxc::kX86Pv: return "x86 PV";
    case libxc::kX86Hvm: return "x86 HVM";
    default: return "unknown";
  }
}

std::string human(u64 b) { return format_bytes(b, true); }

// "xl (config 512 bytes) > libxl > libxc v3", as the layers nest.
std::string layers(const InspectReport& rep) {
  std::string s;
  if (rep.legacy) s = "legacy (Xen <= 4.5, " + num(rep.legacy_width) + "-bit toolstack) read as ";
  const std::string& c = rep.stats.container;
  if (c.starts_with("xl")) s += "xl header > ";
  if (c.starts_with("libvirt")) s += "libvirt header > ";
  if (c.find("libxl") != std::string::npos) s += "libxl v2 > ";
  s += "libxc v" + num(rep.stats.libxc_version);
  return s;
}

struct TypeRow {
  Layer layer;
  u32 type;
  const TypeCount* tc;
};
std::vector<TypeRow> type_rows(const StreamStats& st) {
  std::vector<TypeRow> rows;
  for (u32 i = 0; i < st.libxl.size(); ++i)
    if (st.libxl[i].records) rows.push_back({Layer::libxl, i, &st.libxl[i]});
  for (u32 i = 0; i < st.libxc.size(); ++i)
    if (st.libxc[i].records) rows.push_back({Layer::libxc, i, &st.libxc[i]});
  for (const auto& [type, tc] : st.optional) rows.push_back({Layer::libxc, type, &tc});
  return rows;
}

}  // namespace

void inspect(Source& src, const InspectOptions& opt, InspectReport& rep) {
  Collector c(opt, rep);
  VerifyOptions vo;
  vo.format = Format::autodetect;
  vo.observer = &c;
  vo.progress = opt.progress;
  rep.error = verify(src, vo, rep.stats);
  find_holes(opt, rep);
  std::string_view cfg;
  if (rep.config_kind == "xl" && xl::config_in_optional_data(rep.config, rep.config_bytes, cfg)) {
    rep.config_bytes = cfg.size();
    rep.config = std::string(cfg);
  }
}

std::string inspect_text(const std::string& image, const InspectReport& rep, bool with_config,
                         bool with_vcpus) {
  const StreamStats& st = rep.stats;
  std::string o;
  auto line = [&](const char* key, const std::string& v) { o += strprintf("%-13s%s\n", key, v.c_str()); };
  line("image", image + " (" + human(st.bytes) + (rep.error ? ", INVALID" : "") + ")");
  line("container", layers(rep));
  if (rep.compression)
    line("compression", std::string(codec_name(rep.compression->codec)) + ", " +
                            human(rep.compression->compressed_bytes) + " compressed");
  if (!rep.config_kind.empty())
    line("config", rep.config_kind + " domain config, " + num(rep.config_bytes) + " bytes" +
                       (with_config ? "" : " (--config prints it)"));
  std::string guest = guest_name(st);
  if (rep.pv_width_bits)
    guest += strprintf(", %u-bit, %u-level page tables", rep.pv_width_bits, rep.pt_levels);
  if (st.xen_major) guest += strprintf(", saved by Xen %u.%u", st.xen_major, st.xen_minor);
  else if (st.legacy_converted) guest += ", converted from a legacy image";
  line("guest", guest);
  line("records", num(st.records) + " in " + human(st.bytes));
  for (const TypeRow& r : type_rows(st))
    o += strprintf("  %s %-28s %10llu  %s\n", r.layer == Layer::libxc ? "libxc" : "libxl",
                   record_name(r.layer, r.type).c_str(), static_cast<unsigned long long>(r.tc->records),
                   human(r.tc->bytes).c_str());
  std::string pages = counted(st.pages, "body", "bodies") + " (" + human(st.pages * kPageSize) + ")";
  if (!rep.pfns.empty()) {
    pages += ", " + counted(rep.pfns.size(), "distinct pfn") + " " + hex(rep.pfns.min()) + "-" +
             hex(rep.pfns.max());
    pages += ", " + counted(rep.hole_count, "hole") + " (" + counted(rep.hole_pfns, "pfn") + ")";
  }
  pages += ", " + counted(rep.resent.size(), "pfn") + " sent more than once (" +
           counted(rep.resends, "extra body", "extra bodies") + ")";
  if (!rep.pfns.complete()) pages += " [pfn tracking stopped: too sparse]";
  line("pages", pages);
  std::string types;
  for (unsigned t = 0; t < 16; ++t)
    if (st.pfns_by_type[t])
      types += std::string(types.empty() ? "" : ", ") + std::string(page_type_name(t)) + " " +
               num(st.pfns_by_type[t]);
  if (!types.empty()) line("  by type", types);
  for (std::size_t i = 0; i < rep.holes.size() && i < 8; ++i)
    line(i == 0 ? "  holes" : "", hex(rep.holes[i].first) + "-" + hex(rep.holes[i].second));
  if (rep.holes.size() > 8 || rep.hole_count > rep.holes.size())
    line("", "... (--json lists " + num(rep.holes.size()) + ")");
  line("vcpus", num(rep.vcpus.size()));
  for (const auto& [id, recs] : rep.vcpus) {
    std::string l;
    for (const auto& r : recs) l += std::string(l.empty() ? "" : " ") + r;
    o += strprintf("  %-11u%s\n", id, l.c_str());
  }
  if (!rep.hvm_domain_state.empty()) {
    std::string l;
    for (const auto& r : rep.hvm_domain_state) l += std::string(l.empty() ? "" : " ") + r;
    line("hvm state", l);
  }
  if (const auto& hc = rep.hvm_context) {
    std::string l = counted(hc->entries, "entry", "entries");
    if (hc->header)
      l += strprintf(", HEADER version %u, cpuid 0x%08x, %u kHz", hc->version, hc->cpuid, hc->gtsc_khz);
    line("hvm context", l);
    for (const auto& w : hc->warnings) o += "  warning: " + w + "\n";
  }
  if (!rep.hvm_params.empty()) {
    line("hvm params", num(rep.hvm_params.size()));
    for (const auto& [idx, val] : rep.hvm_params) {
      std::string_view n = hvm_param_name(idx);
      o += strprintf("  %-24s %s\n", n.empty() ? num(idx).c_str() : std::string(n).c_str(), hex(val).c_str());
    }
  }
  if (rep.tsc)
    line("tsc", strprintf("mode %u, %u kHz, nsec %llu, incarnation %u", rep.tsc->mode, rep.tsc->khz,
                          static_cast<unsigned long long>(rep.tsc->nsec), rep.tsc->incarnation));
  if (rep.p2m) line("p2m", "pfns " + hex(rep.p2m->first) + "-" + hex(rep.p2m->second));
  if (rep.cpuid_leaves || rep.msr_entries)
    line("cpu policy", num(rep.cpuid_leaves) + " CPUID leaves, " + num(rep.msr_entries) + " MSRs");
  line("checkpoints", num(st.checkpoints));
  for (const auto& e : rep.emulators)
    line("emulator", e.emulator + " index " + num(e.index) + ": " + e.record + ", " + human(e.bytes));
  if (with_config && !rep.config.empty()) {
    o += "config:\n" + rep.config;
    if (rep.config.back() != '\n') o += '\n';
  }
  if (with_vcpus) o += "vcpu state:\n" + vcpu_states_text(rep.vcpu_state);
  return o;
}

namespace {

using Json = nlohmann::ordered_json;

// A count, or null when the fact is absent (zero).
Json or_null(u64 v) { return v ? Json(v) : Json(nullptr); }

// The "pages" member: entries, pfns, holes, resends.
Json pages_json(const InspectReport& rep) {
  const StreamStats& st = rep.stats;
  Json p;
  p["bodies"] = st.pages;
  p["entries"] = rep.entries;
  p["entries_without_body"] = rep.no_data;
  Json by_type = Json::object();
  for (unsigned t = 0; t < 16; ++t)
    if (st.pfns_by_type[t]) by_type[std::string(page_type_name(t))] = st.pfns_by_type[t];
  p["entries_by_type"] = std::move(by_type);
  p["distinct_pfns"] = rep.pfns.size();
  p["pfn_min"] = rep.pfns.empty() ? Json(nullptr) : Json(rep.pfns.min());
  p["pfn_max"] = rep.pfns.empty() ? Json(nullptr) : Json(rep.pfns.max());
  p["hole_count"] = rep.hole_count;
  p["hole_pfns"] = rep.hole_pfns;
  Json holes = Json::array();
  for (const auto& [a, b] : rep.holes) holes.push_back({a, b});
  p["holes"] = std::move(holes);
  p["holes_complete"] = rep.holes.size() == rep.hole_count;
  p["pfns_sent_more_than_once"] = rep.resent.size();
  p["extra_bodies"] = rep.resends;
  p["pfn_tracking_complete"] = rep.pfns.complete() && rep.resent.complete();
  return p;
}

Json container_json(const InspectReport& rep) {
  Json c;
  c["layers"] = rep.stats.container.empty() ? Json(nullptr) : Json(rep.stats.container);
  c["legacy"] = rep.legacy;
  c["legacy_toolstack_width"] = rep.legacy ? Json(rep.legacy_width) : Json(nullptr);
  c["config_kind"] = rep.config_kind.empty() ? Json(nullptr) : Json(rep.config_kind);
  c["config_bytes"] = rep.config_bytes;
  return c;
}

Json guest_json(const InspectReport& rep) {
  const StreamStats& st = rep.stats;
  Json g;
  g["type"] = st.domain_type == libxc::kX86Pv ? "pv" : st.domain_type == libxc::kX86Hvm ? "hvm" : "unknown";
  g["width_bits"] = or_null(rep.pv_width_bits);
  g["pagetable_levels"] = or_null(rep.pt_levels);
  g["xen_version"] = st.xen_major ? Json(num(st.xen_major) + "." + num(st.xen_minor)) : Json(nullptr);
  g["legacy_converted"] = st.legacy_converted;
  return g;
}

Json records_json(const StreamStats& st) {
  Json by_type = Json::array();
  for (const TypeRow& r : type_rows(st))
    by_type.push_back({{"layer", r.layer == Layer::libxc ? "libxc" : "libxl"},
                       {"type", record_name(r.layer, r.type)},
                       {"type_id", r.type},
                       {"records", r.tc->records},
                       {"bytes", r.tc->bytes}});
  return {{"total", st.records}, {"by_type", std::move(by_type)}};
}

Json hvm_context_json(const std::optional<InspectReport::HvmContext>& hc) {
  if (!hc) return nullptr;
  Json h = hc->header ? Json{{"magic", hc->magic},
                             {"version", hc->version},
                             {"changeset", hc->changeset},
                             {"cpuid", hc->cpuid},
                             {"gtsc_khz", hc->gtsc_khz}}
                      : Json(nullptr);
  return {
      {"offset", hc->offset}, {"header", std::move(h)}, {"entries", hc->entries}, {"warnings", hc->warnings}};
}

// vCPUs, HVM domain state, HVM params, TSC and the p2m range.
void cpu_json(const InspectReport& rep, Json& o) {
  Json v = Json::array();
  for (const auto& [id, recs] : rep.vcpus) v.push_back({{"id", id}, {"contexts", recs}});
  o["vcpus"] = std::move(v);
  o["hvm_domain_state"] = rep.hvm_domain_state;
  o["hvm_context"] = hvm_context_json(rep.hvm_context);
  Json hp = Json::array();
  for (const auto& [idx, val] : rep.hvm_params) {
    const std::string_view n = hvm_param_name(idx);
    hp.push_back(
        {{"index", idx}, {"name", n.empty() ? Json(nullptr) : Json(std::string(n))}, {"value", val}});
  }
  o["hvm_params"] = std::move(hp);
  o["tsc"] = rep.tsc ? Json{{"mode", rep.tsc->mode},
                            {"khz", rep.tsc->khz},
                            {"nsec", rep.tsc->nsec},
                            {"incarnation", rep.tsc->incarnation}}
                     : Json(nullptr);
  o["p2m"] = rep.p2m ? Json{{"start_pfn", rep.p2m->first}, {"end_pfn", rep.p2m->second}} : Json(nullptr);
}

}  // namespace

nlohmann::ordered_json inspect_json(const std::string& image, const InspectReport& rep, bool with_config,
                                    bool with_vcpus) {
  const StreamStats& st = rep.stats;
  Json o;
  o["schema"] = "xsr-inspect/1";
  o["image"] = image;
  o["valid"] = !rep.error;
  o["error"] = error_json(rep.error);
  o["container"] = container_json(rep);
  o["stream_version"] = or_null(st.libxc_version);
  o["guest"] = guest_json(rep);
  o["bytes"] = st.bytes;
  o["compression"] = compression_json(rep.compression);
  o["records"] = records_json(st);
  o["pages"] = pages_json(rep);
  cpu_json(rep, o);
  o["cpuid_leaves"] = rep.cpuid_leaves;
  o["msr_entries"] = rep.msr_entries;
  o["shared_info"] = rep.shared_info;
  o["checkpoints"] = st.checkpoints;
  o["checkpoint_states"] = rep.checkpoint_states;
  Json em = Json::array();
  for (const auto& e : rep.emulators)
    em.push_back({{"record", e.record}, {"emulator", e.emulator}, {"index", e.index}, {"bytes", e.bytes}});
  o["emulators"] = std::move(em);
  o["config"] = with_config ? Json(rep.config) : Json(nullptr);
  o["vcpu_state"] = with_vcpus ? vcpu_states_json(rep.vcpu_state) : Json(nullptr);
  return o;
}

}  // namespace xsr
