// xsr relay: verify a stream in flight and forward it, a record at a time.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "common/json.h"
#include "common/output.h"
#include "xsr/gen.h"
#include "xsr/net.h"
#include "xsr/relay.h"
#include "common/stats.h"
#include "xsr_cmd.h"

namespace xsr_cmd {

namespace {

// Runtime failures: "xsr relay: ...", exit 1.
[[noreturn]] void fail(const std::string& msg) {
  std::fprintf(stderr, "xsr relay: %s\n", msg.c_str());
  std::exit(1);
}

int seconds_to_ms(double s, const char* what) {
  if (!(s > 0) || s > 86400 * 365) die(2, std::string("relay: ") + what + " must be a positive number of seconds");
  return static_cast<int>(s * 1000 + 0.5);
}

}  // namespace

int cmd_relay(int argc, char** argv) {
  po::options_description desc(
      "Usage: xsr relay [options] [IN] [-o OUT]\n\n"
      "Verifies a v2/v3 stream as it flows and forwards it unchanged. Each record is\n"
      "held until it has been checked whole, then sent; at the first invalid record\n"
      "nothing more is sent, the output is closed and the exit status is 1, so a\n"
      "corrupt stream never completes on the receiver. Page bodies move by splice,\n"
      "never through user space. Nothing past the stream's end is read, unless\n"
      "--then-copy asks to copy what follows (both ways between two sockets).\n"
      "IN: FILE, FD number or - (stdin), or --listen; OUT: FD, - (stdout), FILE, or\n"
      "--connect. ADDR: HOST:PORT, [IPV6]:PORT or unix:PATH.\n"
      "Exit status: 0 forwarded whole, 1 invalid, truncated, timed out or a peer\n"
      "failed, 2 usage or tool error.\n\nOptions");
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
      ("convert-format", po::value<std::string>(),
       "--convert: libxc or libxl (default: libxl behind an xl or libvirt header)")
      ("skip-qemu", po::bool_switch(), "--convert, libxc output: leave the qemu record out")
      ("stream-version", po::value<unsigned>()->default_value(3), "--convert: 2 writes a v2 stream")
      ("then-copy", po::bool_switch(), "after the stream, copy what follows (both ways between sockets)")
      ("timeout,t", po::value<double>(), "give up when a peer moves no byte for SECONDS")
      ("hold", po::value<std::string>()->default_value("64M"), "longest record held while it is checked")
      ("stats", po::bool_switch(), "print throughput lines every --stats-interval and at the end")
      ("stats-interval", po::value<double>()->default_value(1.0), "seconds between --stats lines and samples")
      ("stats-json", po::value<std::string>(), "write a JSON summary with throughput samples to FILE")
      ("verbose,v", po::bool_switch(), "the reference's -v lines on stderr, and the I/O paths")
      ("quiet,q", po::bool_switch(), "print nothing; the exit status tells")
      ("io", po::value<std::string>()->default_value("auto"), "header reads: auto, uring or read");
  po::positional_options_description pos;
  pos.add("input", 1);
  po::variables_map vm = parse(argc, argv, desc, pos, "relay");
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  const bool verbose = vm["verbose"].as<bool>(), quiet = vm["quiet"].as<bool>();
  xsr::RelayOptions opt;
  const std::string f = vm["format"].as<std::string>();
  if (f == "auto") opt.verify.format = xsr::Format::autodetect;
  else if (f == "libxc") opt.verify.format = xsr::Format::libxc;
  else if (f == "libxl") opt.verify.format = xsr::Format::libxl;
  else if (f == "xl") opt.verify.format = xsr::Format::xl;
  else die(2, "relay: --format must be auto, libxc, libxl or xl, not '" + f + "'");
  opt.verify.strict = vm["strict"].as<bool>();
  opt.verify.checkpointed = vm["checkpointed"].as<bool>();
  // The reference's -v lines go to stderr: stdout may be the stream.
  if (verbose)
    opt.verify.info = [](const std::string& l) { std::fprintf(stderr, "%s\n", l.c_str()); };
  if (!quiet) opt.verify.note = [](const std::string& l) { std::fprintf(stderr, "xsr: note: %s\n", l.c_str()); };

  opt.convert = vm["convert"].as<bool>();
  if (vm.count("width")) {
    opt.conv.width = vm["width"].as<unsigned>();
    if (opt.conv.width != 32 && opt.conv.width != 64) die(2, "relay: --width must be 32 or 64");
  }
  if (vm.count("guest")) {
    const std::string g = vm["guest"].as<std::string>();
    if (g != "pv" && g != "hvm") die(2, "relay: --guest must be pv or hvm");
    opt.conv.guest = g == "pv" ? xsr::GuestType::pv : xsr::GuestType::hvm;
  }
  if (vm.count("convert-format")) {
    const std::string c = vm["convert-format"].as<std::string>();
    if (c == "libxc") opt.conv_format = xsr::RelayOptions::OutFormat::libxc;
    else if (c == "libxl") opt.conv_format = xsr::RelayOptions::OutFormat::libxl;
    else die(2, "relay: --convert-format must be libxc or libxl");
  }
  opt.conv.skip_qemu = vm["skip-qemu"].as<bool>();
  opt.conv.stream_version = vm["stream-version"].as<unsigned>();
  if (opt.conv.stream_version != 2 && opt.conv.stream_version != 3)
    die(2, "relay: --stream-version must be 2 or 3");
  if (!opt.convert && (vm.count("width") || vm.count("guest") || vm.count("convert-format") ||
                       opt.conv.skip_qemu || !vm["stream-version"].defaulted()))
    die(2, "relay: --width, --guest, --convert-format, --skip-qemu and --stream-version need --convert");
  opt.then_copy = vm["then-copy"].as<bool>();
  if (vm.count("timeout")) opt.timeout_ms = seconds_to_ms(vm["timeout"].as<double>(), "--timeout");
  if (!xsr::parse_size(vm["hold"].as<std::string>(), opt.max_hold) || opt.max_hold < (1u << 20))
    die(2, "relay: --hold must be a size of at least 1M, not '" + vm["hold"].as<std::string>() + "'");
  const std::string io = vm["io"].as<std::string>();
  if (io == "read") opt.io = xsr::IoMode::read;
  else if (io != "auto" && io != "uring") die(2, "relay: --io must be auto, uring or read");
  const double interval = vm["stats-interval"].as<double>();
  if (!(interval > 0)) die(2, "relay: --stats-interval must be a positive number of seconds");

  const bool listen = vm.count("listen"), connect = vm.count("connect");
  if (listen && !vm["input"].defaulted()) die(2, "relay: give IN or --listen, not both");
  if (connect && !vm["output"].defaulted()) die(2, "relay: give -o OUT or --connect, not both");
  xsr::cli::ignore_sigpipe();  // a receiver that left is an error line, not a silent death

  // Listen first, so a sender can connect while the output is being
  // reached; accept once the output is there.
  xsr::net::Address laddr, caddr;
  std::string err, bound;
  int lfd = -1;
  if (listen) {
    if (!xsr::net::parse_address(vm["listen"].as<std::string>(), laddr, &err)) die(2, "relay: --listen " + err);
    lfd = xsr::net::listen_on(laddr, &err, &bound);
    if (lfd < 0) fail("listen on " + err);
    if (verbose || (!laddr.is_unix && laddr.port == "0")) {
      std::fprintf(stderr, "xsr relay: listening on %s\n", bound.c_str());
      std::fflush(stderr);
    }
  }

  int out_fd = -1;
  std::string out_name;
  xsr::cli::Output file_out;
  if (connect) {
    if (!xsr::net::parse_address(vm["connect"].as<std::string>(), caddr, &err)) die(2, "relay: --connect " + err);
    out_fd = xsr::net::connect_to(caddr, opt.timeout_ms < 0 ? 10000 : opt.timeout_ms, &err);
    if (out_fd < 0) {
      if (lfd >= 0) xsr::net::unlink_unix(laddr);
      fail("connect to " + err);
    }
    out_name = caddr.text;
  } else {
    const std::string o = vm["output"].as<std::string>();
    if (!file_out.open(o, &err)) die(2, "relay: cannot open " + err);
    out_fd = file_out.fd();
    out_name = spec_name(o, "<stdout>");
    if (::isatty(out_fd)) die(2, "relay: refusing to write a binary stream to a terminal");
  }

  int in_fd = -1;
  bool in_owned = false;
  std::string in_name;
  if (listen) {
    in_fd = xsr::net::accept_one(lfd, opt.timeout_ms, &err);
    ::close(lfd);
    xsr::net::unlink_unix(laddr);
    if (in_fd < 0) fail(laddr.text + ": " + err);
    in_owned = true;
    in_name = bound;
  } else {
    const std::string in = vm["input"].as<std::string>();
    in_name = spec_name(in, "<stdin>");
    if (in == "-") in_fd = 0;
    else if (int n = xsr::parse_fd(in); n >= 0) in_fd = n;
    else {
      in_fd = ::open(in.c_str(), O_RDONLY | O_CLOEXEC);
      if (in_fd < 0) fail("cannot open " + in + ": " + std::strerror(errno));
      in_owned = true;
    }
  }

  xsr::cli::RunStats stats("relay", vm["stats"].as<bool>() && !quiet, interval);
  opt.stats = &stats;
  stats.start();
  xsr::RelayResult r = xsr::relay(in_fd, out_fd, opt);
  stats.stop();
  if (verbose) {
    std::fprintf(stderr, "xsr relay: header reads through %s; held bytes came by %s\n", r.reader.c_str(),
                 r.paths.c_str());
    if (!r.note.empty()) std::fprintf(stderr, "xsr relay: %s\n", r.note.c_str());
  }
  const bool ok = !r.error && r.out_error.empty();
  if (vm.count("stats-json")) {
    xsr::cli::Json extra = xsr::cli::verdict_json(ok ? std::string() : r.error ? r.error.message() : r.out_error);
    extra["in_bytes"] = r.in_bytes;
    extra["converted"] = r.converted;
    if (!stats.write_json(vm["stats-json"].as<std::string>(), extra, &err) && !quiet)
      std::fprintf(stderr, "xsr relay: --stats-json: %s\n", err.c_str());
  }
  if (!ok) {
    // Whatever reaches the receiver ends at the last good record.
    // A FILE output is removed (a regular file given as an FD cut back), as
    // convert does; a pipe or socket is closed after the verified prefix.
    if (connect) {
      ::close(out_fd);
    } else {
      const bool owned = !file_out.temp_path().empty();
      file_out.abort();
      if (!owned) ::close(out_fd);
    }
    if (!quiet) {
      if (r.error)
        std::fprintf(stderr, "xsr relay: %s: %s; forwarded %llu bytes before it\n", in_name.c_str(),
                     r.error.message().c_str(), static_cast<unsigned long long>(r.out_bytes));
      else
        std::fprintf(stderr, "xsr relay: %s: %s (after %llu bytes)\n", out_name.c_str(), r.out_error.c_str(),
                     static_cast<unsigned long long>(r.out_bytes));
    }
    return r.error ? xsr::exit_code(r.error.code) == 2 ? 2 : 1 : 1;
  }
  if (!connect) {
    if (!file_out.commit(&err)) fail(err);
  } else {
    ::shutdown(out_fd, SHUT_WR);
    ::close(out_fd);
  }
  if (in_owned) ::close(in_fd);
  if (!quiet) {
    std::fprintf(stderr, "xsr relay: forwarded %s (%s stream, %llu records, %llu pages%s) from %s to %s",
                 human(r.out_bytes).c_str(), r.stats.container.c_str(),
                 static_cast<unsigned long long>(r.stats.records),
                 static_cast<unsigned long long>(r.stats.pages), r.converted ? ", converted from legacy" : "",
                 in_name.c_str(), out_name.c_str());
    if (opt.then_copy)
      std::fprintf(stderr, "; then %llu bytes on, %llu back", static_cast<unsigned long long>(r.copied_forward),
                   static_cast<unsigned long long>(r.copied_back));
    std::fputc('\n', stderr);
  }
  return 0;
}

}  // namespace xsr_cmd
