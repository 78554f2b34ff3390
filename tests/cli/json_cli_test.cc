// The JSON documents as users read them (docs/verify-json.md,
// docs/inspect-json.md, docs/stats-json.md): keys and their order, counts
// that stop at the failing record, a document for every input inspect is
// given, compression reported. Read back by Python's json module.
#include <cstdio>

#include "cli_util.h"

namespace xsr::test {
namespace {

// verify --json's keys, in order (docs/verify-json.md).
const char* const kVerifyKeys =
    "['schema', 'input', 'verdict', 'error', 'container', 'libxc_version', 'guest_type', 'xen_version', "
    "'legacy_converted', 'bytes', 'bytes_read', 'bytes_after_end', 'compression', 'records', 'pages', "
    "'checkpoints', 'seconds', "
    "'libxc_records', 'libxl_records', 'optional_records', 'pfns_by_type']\n";

// inspect --json's keys, in order, and its two nested objects'.
const char* const kInspectKeys =
    "['schema', 'image', 'valid', 'error', 'container', 'stream_version', 'guest', 'bytes', 'compression', "
    "'records', 'pages', 'vcpus', 'hvm_domain_state', 'hvm_context', 'hvm_params', 'tsc', 'p2m', "
    "'cpuid_leaves', "
    "'msr_entries', 'shared_info', 'checkpoints', 'checkpoint_states', 'emulators', 'config', 'vcpu_state']\n"
    "['layers', 'legacy', 'legacy_toolstack_width', 'config_kind', 'config_bytes']\n"
    "['type', 'width_bits', 'pagetable_levels', 'xen_version', 'legacy_converted']\n";
const char* const kPrintInspectKeys =
    "print(list(d))\nprint(list(d['container']))\nprint(list(d['guest']))\n";

class JsonCli : public TempDirTest {
 protected:
  JsonCli() : TempDirTest("json-cli") {}
  // Runs python3 on `code` with the JSON text as d; returns its stdout.
  std::string python(const std::string& code, const std::string& json) {
    const std::string f = path("doc.json");
    std::FILE* fp = std::fopen(f.c_str(), "w");
    std::fwrite(json.data(), 1, json.size(), fp);
    std::fclose(fp);
    Result r = run({"/usr/bin/python3", "-c", "import json,sys\nd=json.load(open(sys.argv[1]))\n" + code, f});
    EXPECT_EQ(r.exit, 0) << r.err << json;
    return r.out;
  }
  // The first `n` bytes of `from` as a new file `name`.
  std::string cut(const std::string& from, std::size_t n, const std::string& name) {
    std::vector<std::byte> b = read_file(from);
    b.resize(std::min(n, b.size()));
    write_file(path(name), b);
    return path(name);
  }
  std::string gen(const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{xsr_bin(), "gen", "--size", "2M", "--seed", "3", "-o", path(name)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Result r = run(argv);
    EXPECT_EQ(r.exit, 0) << r.err;
    return path(name);
  }
};

TEST_F(JsonCli, VerifyJsonStartsWithItsSchemaAndKeepsEveryKey) {
  Result r = run({xsr_bin(), "verify", "--json", fixture("valid/xl-libxl-hvm.bin")});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(python("print(list(d))\nprint(d['schema'], d['error'], d['compression'], d['bytes'] == "
                   "d['bytes_read'])\n",
                   r.out),
            std::string(kVerifyKeys) + "xsr-verify/1 None None True\n");
  // An invalid stream: the same keys.
  r = run({xsr_bin(), "verify", "--json", fixture("invalid/pagedata-reserved-pfn-bits.bin")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(python("print(list(d))\n", r.out), kVerifyKeys);
}

TEST_F(JsonCli, VerifyJsonCountsStopAtTheFailingRecord) {
  // Records 0-5 pass (two PAGE_DATA of 3 and 1 entries, 3 bodies); record 6,
  // a PAGE_DATA at 0x30e0, has a bad entry: neither it nor its entries count.
  Result r = run({xsr_bin(), "verify", "--json", fixture("invalid/pagedata-reserved-pfn-bits.bin")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(python("e=d['error']\n"
                   "print(d['verdict'], e['code'], e['record'], e['layer'], e['type'])\n"
                   "print(d['records'], d['pages'], d['bytes'], d['pfns_by_type'])\n"
                   "print(d['libxc_records']['PAGE_DATA'], d['bytes_read'] > d['bytes'])\n",
                   r.out),
            "invalid bad_record 7 libxc PAGE_DATA\n"
            "7 5 21808 {'NOTAB': 5, 'XTAB': 1}\n"
            "{'records': 2, 'bytes': 20560} True\n");
  // A generated stream cut inside its first PAGE_DATA (at 312, after the
  // 40 bytes of libxc headers and three records): 3 records, 312 bytes.
  const std::string img = gen("g");
  r = run({xsr_bin(), "verify", "--json", cut(img, 300000, "cut")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(python("print(d['error']['code'], d['error']['record'], d['records'], d['pages'], d['bytes'], "
                   "d['bytes_read'], d['pfns_by_type'])\n",
                   r.out),
            "truncated 3 3 0 312 300000 {}\n");
}

TEST_F(JsonCli, VerifyJsonAfterAFailedXlHeaderSaysHowFarItRead) {
  // The xl header's fixed part (48 bytes) is there, its config cut short.
  Result r = run({xsr_bin(), "verify", "--json", fixture("invalid/xl-truncated-config.bin")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(python("print(d['error']['code'], d['error']['offset'], d['container'], d['libxc_version'], "
                   "d['guest_type'], d['xen_version'], d['bytes'], d['bytes_read'], d['records'])\n",
                   r.out),
            "truncated 48 None None unknown None 0 " +
                std::to_string(read_file(fixture("invalid/xl-truncated-config.bin")).size()) + " 0\n");
}

TEST_F(JsonCli, VerifyJsonHasNoXenVersionForAConvertedLegacyStream) {
  Result r = run({xsr_bin(), "verify", "--json", fixture("valid/libxc-legacy-converted-hvm.bin")});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(python("print(d['xen_version'], d['legacy_converted'])\n", r.out), "None True\n");
}

TEST_F(JsonCli, VerifyJsonReportsTheCodecAndCompressedSize) {
  const std::string plain = gen("g"), z = gen("g.zst", {"--compress", "zstd"});
  Result a = run({xsr_bin(), "verify", "--json", plain});
  Result b = run({xsr_bin(), "verify", "--json", z});
  ASSERT_EQ(b.exit, 0) << b.err;
  EXPECT_EQ(python("print(d['compression'])\n", a.out), "None\n");
  EXPECT_EQ(python("print(d['compression'], d['bytes'])\n", b.out),
            "{'codec': 'zstd', 'compressed_bytes': " + std::to_string(read_file(z).size()) + "} " +
                std::to_string(read_file(plain).size()) + "\n");
}

TEST_F(JsonCli, InspectJsonPrintsADocumentForEveryInput) {
  std::vector<std::string> inputs{path("empty"), path("garbage"), path("missing"), dir_};
  write_file(path("empty"), {});
  write_file(path("garbage"), std::vector<std::byte>(4096, std::byte{0x5a}));
  const std::string valid = run({xsr_bin(), "inspect", "--json", fixture("valid/xl-libxl-hvm.bin")}).out;
  ASSERT_EQ(python(kPrintInspectKeys, valid), kInspectKeys);
  for (const std::string& in : inputs) {
    Result r = run({xsr_bin(), "inspect", "--json", in});
    EXPECT_EQ(r.exit, 1) << in;
    EXPECT_EQ(r.err.rfind("xsr inspect: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(python(kPrintInspectKeys, r.out), kInspectKeys) << in;
    EXPECT_EQ(python("print(d['valid'], list(d['error']), d['bytes'], d['records']['total'], "
                     "d['stream_version'], d['container']['layers'], d['config'], d['compression'])\n",
                     r.out),
              "False ['code', 'offset', 'message'] 0 0 None None None None\n")
        << in;
  }
  EXPECT_EQ(python("print(d['error']['code'])\n", run({xsr_bin(), "inspect", "--json", path("missing")}).out),
            "io\n");
  // With --records too, the (empty) record list comes first.
  Result r = run({xsr_bin(), "inspect", "--json", "--records", path("empty")});
  EXPECT_EQ(r.exit, 1);
  EXPECT_EQ(python("print(list(d)[:2], d['record_list'])\n", r.out), "['record_list', 'schema'] []\n");
}

TEST_F(JsonCli, InspectJsonNeverMissesAKey) {
  // Not legacy, no --config: legacy_toolstack_width and config are null.
  Result r = run({xsr_bin(), "inspect", "--json", fixture("valid/xl-libxl-hvm.bin")});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(python("print(d['container']['legacy_toolstack_width'], d['config'], d['compression'])\n", r.out),
            "None None None\n");
  r = run({xsr_bin(), "inspect", "--json", "--config", fixture("valid/xl-libxl-hvm.bin")});
  EXPECT_EQ(python("print(type(d['config']).__name__, len(d['config']) == d['container']['config_bytes'])\n",
                   r.out),
            "str True\n");
  // A legacy image: its toolstack width, and no Xen version (null, not "0.0").
  r = run({xsr_bin(), "inspect", "--json", fixture("sample/legacy-hvm.xl.bin")});
  ASSERT_EQ(r.exit, 0) << r.err;
  EXPECT_EQ(python(kPrintInspectKeys, r.out), kInspectKeys);
  EXPECT_EQ(python("print(d['container']['legacy'], d['container']['legacy_toolstack_width'], "
                   "d['guest']['xen_version'], d['guest']['legacy_converted'])\n",
                   r.out),
            "True 64 None True\n");
}

TEST_F(JsonCli, InspectAndVerifyShareOneErrorObject) {
  const std::string f = fixture("invalid/pagedata-reserved-pfn-bits.bin");
  Result i = run({xsr_bin(), "inspect", "--json", f});
  Result v = run({xsr_bin(), "verify", "--json", f});
  EXPECT_EQ(i.exit, 1);
  EXPECT_EQ(v.exit, 1);
  const std::string code = "print(json.dumps(d['error']))\n";
  EXPECT_EQ(python(code, i.out), python(code, v.out));
  EXPECT_EQ(python("print(list(d['error']))\n", i.out),
            "['code', 'offset', 'record', 'layer', 'type', 'message']\n");
  // The counts stop at the failing record in inspect too.
  EXPECT_EQ(python("print(d['bytes'], d['records']['total'], d['pages']['bodies'], d['pages']['entries'], "
                   "d['pages']['entries_by_type'])\n",
                   i.out),
            "21808 7 5 6 {'NOTAB': 5, 'XTAB': 1}\n");
}

TEST_F(JsonCli, StatsJsonStartsWithItsSchema) {
  const std::string img = gen("g"), j = path("s.json");
  Result r = run({xsr_bin(), "verify", "--stats-json", j, img});
  ASSERT_EQ(r.exit, 0) << r.err;
  std::vector<std::byte> b = read_file(j);
  EXPECT_EQ(python("print(list(d)[:2], d['schema'])\n",
                   std::string(reinterpret_cast<const char*>(b.data()), b.size())),
            "['schema', 'tool'] xsr-stats/1\n");
}

}  // namespace
}  // namespace xsr::test
