// xsr's command-line options: one parser and validator for each option that
// more than one subcommand takes (--format, --guest, --width,
// --stream-version, --io, --compress, the --stats trio), the parse of a
// whole command line, and how inputs and outputs are named in messages.
// A bad value is a usage error (cli::Failure, status kUsage) whose message
// names the subcommand: "xsr verify: --io must be auto, pread, mmap, uring
// or read".
#pragma once

#include <boost/program_options.hpp>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/exit.h"
#include "common/json.h"
#include "common/stats.h"
#include "xsr/compress.h"
#include "xsr/convert.h"
#include "xsr/source.h"
#include "xsr/verify.h"

namespace xsr::cli {

namespace po = boost::program_options;

// Parses a subcommand's arguments (argv[0] is its name); a parse error is
// "xsr CMD: WHAT (see 'xsr CMD --help')".
po::variables_map parse(int argc, char** argv, const po::options_description& desc,
                        const po::positional_options_description& pos, const char* cmd);

// One allowed value of an option and what it means.
template <typename T>
struct Choice {
  std::string_view name;
  T value;
};

// The usage error for a value outside `names`: "CMD: OPTION must be A, B or
// C", then ", not 'VALUE'" when `quote`.
[[noreturn]] void bad_choice(const char* cmd, const char* option, const std::string& value,
                             const std::vector<std::string_view>& names, bool quote);

// The meaning of `value` among `choices`, or bad_choice(). The order of
// `choices` is the order the message lists them in.
template <typename T>
T choose(const char* cmd, const char* option, const std::string& value,
         std::initializer_list<Choice<T>> choices, bool quote = false) {
  for (const Choice<T>& c : choices)
    if (value == c.name) return c.value;
  std::vector<std::string_view> names;
  for (const Choice<T>& c : choices) names.push_back(c.name);
  bad_choice(cmd, option, value, names, quote);
}

// --format of a stream to read (verify, relay): auto, libxc, libxl or xl.
Format read_format(const char* cmd, const std::string& value);
// The format of a converted stream (convert --format, relay
// --convert-format): libxc or libxl; true for libxl.
bool libxl_output(const char* cmd, const char* option, const std::string& value);
// --guest (convert, relay): pv or hvm.
GuestType guest_type(const char* cmd, const std::string& value);
// A width in bits (--width, --toolstack-width): 32 or 64.
unsigned width_bits(const char* cmd, const char* option, unsigned value);
// --stream-version (convert, relay, gen): 2 or 3.
unsigned stream_version(const char* cmd, unsigned value);

// The --io paths a command offers: every one (files too), or those that
// read pipes and sockets (relay).
enum class IoModes { all, streams };
// --io: the I/O path to force.
IoMode io_mode(const char* cmd, const std::string& value, IoModes offered = IoModes::all);

// The codec of an output (convert, gen): --compress CODEC, else the one
// its FILE name ends with (.zst, .gz, .xz, .bz2), else Codec::none. A
// --compress that contradicts the name, and --level without a codec, are
// usage errors. `out` is the output spec ("" for none: a connection).
Codec output_codec(const po::variables_map& vm, const char* cmd, const std::string& out);

// How --stats, --stats-interval and --stats-json read in a command's help,
// and the rule a bad interval breaks. One wording for verify, convert and
// gen; relay keeps its own, byte for byte.
struct StatsHelp {
  const char* stats;
  const char* interval;
  const char* json;
  const char* interval_rule;  // "CMD: --stats-interval " + this
};
extern const StatsHelp kStatsHelp, kRelayStatsHelp;

// Adds --stats, --stats-interval (default 1) and --stats-json.
void add_stats_options(po::options_description& desc, const StatsHelp& help = kStatsHelp);

// A RunStats when --stats or --stats-json asked for one, else null. The
// interval must be a number of seconds in (0, 86400], a --stats-json name
// non-empty. `quiet`: no lines even with --stats (relay's -q).
std::unique_ptr<RunStats> make_stats(const po::variables_map& vm, const char* cmd,
                                     const StatsHelp& help = kStatsHelp, bool quiet = false);

// Writes --stats-json when asked, with `extra` members (verdict_json(),
// ...); false, with "xsr CMD: --stats-json: WHY" printed (unless `quiet`),
// when it cannot be written.
bool write_stats_json(RunStats* stats, const po::variables_map& vm, const char* cmd, const Json& extra,
                      bool quiet = false);

// How an input or output spec is named in messages: `dash` for "-"
// ("<stdin>", "<stdout>"), "fd N" for a descriptor number, else the path.
std::string display_name(const std::string& spec, const char* dash);

}  // namespace xsr::cli
