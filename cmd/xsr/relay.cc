// xsr relay: verify a stream in flight and forward it, a record at a time
// (options and wiring; the work is in lib/relay).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/json.h"
#include "common/output.h"
#include "xsr/gen.h"
#include "xsr/net.h"
#include "xsr/relay.h"
#include "xsr/units.h"
#include "xsr_cmd.h"

namespace xsr_cmd {
namespace {

po::options_description relay_options() {
  po::options_description desc(
      "Usage: xsr relay [options] [IN] [-o OUT]\n\n"
      "Verifies a v2/v3 stream as it flows and forwards it unchanged. Each record is\n"
      "held until it has been checked whole, then sent; at the first invalid record\n"
      "nothing more is sent, the output is closed and the exit status is 1, so a\n"
      "corrupt stream never completes on the receiver. Page bodies move by splice,\n"
      "never through user space. Nothing past the stream's end is read, unless\n"
      "--then-copy asks to copy what follows (both ways between two sockets).\n"
      "IN: FILE, FD number or - (stdin), or --listen; OUT: FD, - (stdout), FILE, or\n"
      "--connect. ADDR: HOST:PORT, [IPV6]:PORT or unix:PATH. A FILE output follows\n"
      "xsr's output rule (it appears only once complete; a device or FIFO is\n"
      "written in place; it may not be IN). A silent sender past --timeout is an\n"
      "input failure (1); a receiver that leaves or takes nothing is an output one (2).\n\nOptions");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("input", po::value<std::string>()->default_value("-"), "FILE, FD number or - (stdin)")
      ("output,o", po::value<std::string>()->default_value("-"), "FD number, - (stdout) or FILE")
      ("listen,l", po::value<std::string>(), "read the stream from one connection accepted on ADDR")
      ("connect,c", po::value<std::string>(), "forward to a connection made to ADDR")
      ("format,f", po::value<std::string>()->default_value("auto"), "auto, libxc, libxl or xl")
      ("strict,s", po::bool_switch(), "also apply the rules Xen's restore enforces")
      ("checkpointed", po::bool_switch(), "with --strict: a bare libxc stream may hold CHECKPOINTs")
      ("convert", po::bool_switch(), "convert a legacy (Xen <= 4.5) stream to v3 on the way")
      ("width,w", po::value<unsigned>(), "--convert: legacy toolstack width, 32 or 64")
      ("guest,g", po::value<std::string>(), "--convert: guest type, pv or hvm")
      ("convert-format", po::value<std::string>(), "--convert: libxc or libxl (default: libxl behind an xl or libvirt header)")
      ("skip-qemu", po::bool_switch(), "--convert, libxc output: leave the qemu record out")
      ("stream-version", po::value<unsigned>()->default_value(3), "--convert: 2 writes a v2 stream")
      ("force", po::bool_switch(), "write the stream to a terminal anyway")
      ("then-copy", po::bool_switch(), "after the stream, copy what follows (both ways between sockets)")
      ("timeout,t", po::value<double>(), "give up when a peer moves no byte for SECONDS")
      ("hold", po::value<std::string>()->default_value("64M"), "longest record held while it is checked");
  // clang-format on
  cli::add_stats_options(desc, cli::kRelayStatsHelp);
  // clang-format off
  desc.add_options()
      ("verbose,v", po::bool_switch(), "the reference's -v lines on stderr, and the I/O paths")
      ("quiet,q", po::bool_switch(), "print nothing; the exit status tells")
      ("io", po::value<std::string>()->default_value("auto"), "header reads: auto, uring or read");
  // clang-format on
  return desc;
}

// Runtime failures: "xsr relay: ...", status 1.
[[noreturn]] void fail(int status, const std::string& msg) { cli::die(status, "relay: " + msg); }

// --convert and the options that shape the conversion.
void conversion_request(const po::variables_map& vm, xsr::RelayOptions& opt) {
  opt.convert = vm["convert"].as<bool>();
  opt.refuse_non_streams = true;
  if (vm.count("width")) opt.conv.width = cli::width_bits("relay", "--width", vm["width"].as<unsigned>());
  if (vm.count("guest")) opt.conv.guest = cli::guest_type("relay", vm["guest"].as<std::string>());
  if (vm.count("convert-format"))
    opt.conv_format = cli::libxl_output("relay", "--convert-format", vm["convert-format"].as<std::string>())
                          ? xsr::RelayOptions::OutFormat::libxl
                          : xsr::RelayOptions::OutFormat::libxc;
  opt.conv.skip_qemu = vm["skip-qemu"].as<bool>();
  opt.conv.stream_version = cli::stream_version("relay", vm["stream-version"].as<unsigned>());
  if (!opt.convert && (vm.count("width") || vm.count("guest") || vm.count("convert-format") ||
                       opt.conv.skip_qemu || !vm["stream-version"].defaulted()))
    cli::usage_error("relay",
                     "--width, --guest, --convert-format, --skip-qemu and --stream-version need --convert");
}

// The relay asked for: how the stream is checked, converted and carried.
xsr::RelayOptions relay_request(const po::variables_map& vm, bool verbose, bool quiet) {
  xsr::RelayOptions opt;
  opt.verify.format = cli::read_format("relay", vm["format"].as<std::string>());
  opt.verify.strict = vm["strict"].as<bool>();
  opt.verify.checkpointed = vm["checkpointed"].as<bool>();
  // The reference's -v lines go to stderr: stdout may be the stream.
  if (verbose) opt.verify.info = [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); };
  if (!quiet)
    opt.verify.note = [](const std::string& l) { std::fprintf(stderr, "xsr relay: note: %s\n", l.c_str()); };
  conversion_request(vm, opt);
  opt.then_copy = vm["then-copy"].as<bool>();
  if (vm.count("timeout")) {
    const double s = vm["timeout"].as<double>();
    if (!(s > 0) || s > 86400 * 365)
      cli::usage_error("relay", "--timeout must be a positive number of seconds");
    opt.timeout_ms = static_cast<int>(s * 1000 + 0.5);
  }
  if (!xsr::parse_size(vm["hold"].as<std::string>(), opt.max_hold) || opt.max_hold < (1u << 20))
    cli::usage_error("relay",
                     "--hold must be a size of at least 1M, not '" + vm["hold"].as<std::string>() + "'");
  opt.io = cli::io_mode("relay", vm["io"].as<std::string>(), cli::IoModes::streams);
  return opt;
}

// Where the stream comes from and goes, and their names in messages.
// Neither descriptor is closed by the destructor: the process ends soon
// after, as it always did on a failure.
struct Ends {
  int lfd = -1;  // --listen, until the connection is accepted
  xsr::net::Address laddr;
  std::string bound;
  int in_fd = -1, out_fd = -1;
  bool in_owned = false, connect = false;
  std::string in_name, out_name;
  cli::Output file_out;  // -o OUT
};

// --listen: first, so a sender can connect while the output is reached.
void start_listening(const po::variables_map& vm, bool verbose, Ends& e) {
  std::string err;
  const auto a = xsr::net::parse_address(vm["listen"].as<std::string>());
  if (!a.ok()) cli::usage_error("relay", "--listen " + a.error().detail);
  e.laddr = a.value();
  e.lfd = listen_announced(e.laddr, "relay", verbose, &err, &e.bound);
  if (e.lfd < 0) fail(cli::kOutput, "listen on " + err);
}

void open_output(const po::variables_map& vm, int timeout_ms, Ends& e) {
  if (e.connect) {
    const auto a = xsr::net::parse_address(vm["connect"].as<std::string>());
    if (!a.ok()) cli::usage_error("relay", "--connect " + a.error().detail);
    const xsr::net::Address& caddr = a.value();
    const auto c = xsr::net::connect_to(caddr, timeout_ms < 0 ? 10000 : timeout_ms);
    if (!c.ok()) {
      if (e.lfd >= 0) xsr::net::unlink_unix(e.laddr);
      fail(cli::kOutput, "connect to " + c.error().detail);
    }
    e.out_fd = c.value();
    e.out_name = caddr.text;
    return;
  }
  const std::string o = vm["output"].as<std::string>();
  if (e.lfd < 0) cli::note_input(vm["input"].as<std::string>());
  cli::OutputRules rules;
  rules.binary = true;
  rules.force = vm["force"].as<bool>();
  e.file_out.open_or_die(o, "relay", rules);
  e.out_fd = e.file_out.fd();
  e.out_name = cli::display_name(o, "<stdout>");
}

// The input: the connection accepted on --listen, or IN.
void open_input(const po::variables_map& vm, int timeout_ms, Ends& e) {
  std::string err;
  if (e.lfd >= 0) {
    const auto c = xsr::net::accept_one(e.lfd, timeout_ms);
    e.in_fd = c.ok() ? c.value() : -1;
    if (!c.ok()) err = c.error().detail;
    ::close(e.lfd);
    e.lfd = -1;
    xsr::net::unlink_unix(e.laddr);
    if (e.in_fd < 0) fail(cli::kFailed, e.laddr.text + ": " + err);
    e.in_owned = true;
    e.in_name = e.bound;
    return;
  }
  const std::string in = vm["input"].as<std::string>();
  e.in_name = cli::display_name(in, "<stdin>");
  if (in == "-") e.in_fd = 0;
  else if (int n = xsr::parse_fd(in); n >= 0) e.in_fd = n;
  else {
    e.in_fd = ::open(in.c_str(), O_RDONLY | O_CLOEXEC);
    if (e.in_fd < 0) fail(cli::kFailed, "cannot open " + in + ": " + std::strerror(errno));
    e.in_owned = true;
    struct stat st;
    if (::fstat(e.in_fd, &st) == 0 && S_ISDIR(st.st_mode))
      fail(cli::kFailed, "cannot open " + in + ": a directory, not a Xen save image");
  }
}

// A relay that did not forward the whole stream: whatever reaches the
// receiver ends at the last good record. A FILE output is removed (a
// regular file given as an FD cut back), as convert does; a pipe or socket
// is closed after the verified prefix.
int report_failure(const xsr::RelayResult& r, Ends& e, bool quiet) {
  if (e.connect) {
    ::close(e.out_fd);
  } else {
    const bool owned = e.file_out.replaces();
    e.file_out.abort();
    if (!owned) ::close(e.out_fd);
  }
  if (!quiet) {
    if (r.error)
      std::fprintf(stderr, "xsr relay: %s: %s; forwarded %llu bytes before it\n", e.in_name.c_str(),
                   r.error.message().c_str(), static_cast<unsigned long long>(r.out_bytes));
    else
      std::fprintf(stderr, "xsr relay: %s: %s (after %llu bytes)\n", e.out_name.c_str(),
                   r.out_error.detail.c_str(), static_cast<unsigned long long>(r.out_bytes));
  }
  return r.error ? cli::exit_status(r.error) : cli::kOutput;
}

// A whole stream forwarded: the output put in place (a FILE renamed, a
// connection shut down), the input closed, the summary line.
int report_success(const xsr::RelayResult& r, Ends& e, bool then_copy, bool quiet) {
  std::string err;
  if (!e.connect) {
    if (!e.file_out.commit(&err)) fail(cli::kOutput, err);
  } else {
    ::shutdown(e.out_fd, SHUT_WR);
    ::close(e.out_fd);
  }
  if (e.in_owned) ::close(e.in_fd);
  if (quiet) return cli::kOk;
  std::fprintf(stderr, "xsr relay: forwarded %s (%s stream, %llu records, %llu pages%s) from %s to %s",
               xsr::format_bytes(r.out_bytes).c_str(), r.stats.container.c_str(),
               static_cast<unsigned long long>(r.stats.records),
               static_cast<unsigned long long>(r.stats.pages), r.converted ? ", converted from legacy" : "",
               e.in_name.c_str(), e.out_name.c_str());
  if (then_copy)
    std::fprintf(stderr, "; then %llu bytes on, %llu back", static_cast<unsigned long long>(r.copied_forward),
                 static_cast<unsigned long long>(r.copied_back));
  std::fputc('\n', stderr);
  return cli::kOk;
}

}  // namespace

int cmd_relay(int argc, char** argv) {
  const po::options_description desc = relay_options();
  po::positional_options_description pos;
  pos.add("input", 1);
  const po::variables_map vm = cli::parse(argc, argv, desc, pos, "relay");
  if (vm.count("help")) return print_help(desc);
  const bool verbose = vm["verbose"].as<bool>(), quiet = vm["quiet"].as<bool>();
  xsr::RelayOptions opt = relay_request(vm, verbose, quiet);
  std::unique_ptr<cli::RunStats> stats = cli::make_stats(vm, "relay", cli::kRelayStatsHelp, quiet);
  Ends e;
  e.connect = vm.count("connect") > 0;
  if (vm.count("listen") && !vm["input"].defaulted())
    cli::usage_error("relay", "give IN or --listen, not both");
  if (e.connect && !vm["output"].defaulted()) cli::usage_error("relay", "give -o OUT or --connect, not both");
  cli::ignore_sigpipe();  // a receiver that left is an error line, not a silent death
  if (vm.count("listen")) start_listening(vm, verbose, e);
  open_output(vm, opt.timeout_ms, e);
  open_input(vm, opt.timeout_ms, e);

  opt.stats = stats.get();
  if (stats) stats->start();
  const xsr::RelayResult r = xsr::relay(e.in_fd, e.out_fd, opt);
  if (stats) stats->stop();
  if (verbose) {
    std::fprintf(stderr, "xsr relay: header reads through %s; held bytes came by %s\n", r.reader.c_str(),
                 r.paths.c_str());
    if (!r.note.empty()) std::fprintf(stderr, "xsr relay: %s\n", r.note.c_str());
  }
  const bool ok = !r.error && !r.out_error;
  cli::Json extra = cli::verdict_json(ok ? std::string() : r.error ? r.error.message() : r.out_error.detail);
  extra["in_bytes"] = r.in_bytes;
  extra["converted"] = r.converted;
  // A summary that cannot be written is said, but decides nothing.
  cli::write_stats_json(stats.get(), vm, "relay", extra, quiet);
  if (!ok) return report_failure(r, e, quiet);
  return report_success(r, e, opt.then_copy, quiet);
}

}  // namespace xsr_cmd
