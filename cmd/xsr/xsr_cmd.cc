#include "xsr_cmd.h"

#include <sys/stat.h>

#include <cstdio>
#include <iostream>

namespace xsr_cmd {

int print_help(const po::options_description& desc) {
  std::cout << desc
            << "\nExit status: 0 done; 1 the input is invalid, truncated, unreadable, missing or\n"
               "not a Xen save image; 2 a bad command line, or an output, a peer or xsr itself\n"
               "failed (a full disk, a closed pipe, an unwritable file).\n";
  return cli::kOk;
}

void cannot_open(const char* cmd, const xsr::Error& e) {
  if (e.code == xsr::Errc::usage) cli::usage_error(cmd, e.detail);
  cli::die(cli::kFailed, std::string(cmd) + ": cannot open " + e.detail);
}

void open_image(OpenedImage& o, const std::string& spec, const std::string& name, xsr::IoMode io,
                const char* cmd, bool verbose, const std::function<void(const xsr::Error&)>& on_fail) {
  o.src = xsr::open_input(spec, io);
  if (!o.src.source) {
    if (on_fail) on_fail(o.src.error);
    cannot_open(cmd, o.src.error);
  }
  if (xsr::Error e = o.img.open(*o.src.source)) {
    if (on_fail) on_fail(e);
    cli::die(cli::kFailed, std::string(cmd) + ": " + name + ": " + e.message());
  }
  if (!verbose) return;
  std::fprintf(stderr, "xsr %s: reading %s through %s\n", cmd, name.c_str(),
               std::string(o.src.source->kind()).c_str());
  if (!o.src.note.empty()) std::fprintf(stderr, "xsr %s: %s\n", cmd, o.src.note.c_str());
  if (o.img.legacy())
    std::fprintf(stderr,
                 "xsr %s: a legacy image (%u-bit toolstack, %s guest): converted to libxl v3 in a second "
                 "thread on the way in\n",
                 cmd, o.img.guess().width, o.img.guess().guest == xsr::GuestType::pv ? "PV" : "HVM");
}

xsr::Error stream_or_error(xsr::Source& src, const std::string& advice) {
  std::string why;
  const xsr::ImageKind kind = xsr::image_kind(src, &why);
  return kind == xsr::ImageKind::stream ? xsr::Error{} : xsr::not_a_v2_stream(kind, why, advice);
}

PlainImage open_plain_image(const std::string& spec, const char* cmd) {
  const auto refuse = [&](const std::string& why) {
    cli::die(cli::kFailed, std::string(cmd) + ": " + spec + ": " + why);
  };
  if (spec == "-" || xsr::parse_fd(spec) >= 0)
    refuse("the page index needs a plain image file, not standard input or a descriptor");
  // stat before opening: opening a FIFO would wait for a writer.
  struct stat st;
  if (::stat(spec.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    refuse("the page index needs a plain image file, not a pipe, socket or device");
  xsr::OpenResult o = xsr::open_source(spec, xsr::IoMode::pread);
  if (!o.source) cannot_open(cmd, o.error);
  if (const xsr::Codec k = xsr::sniff_codec(*o.source); k != xsr::Codec::none)
    refuse("a " + std::string(xsr::codec_name(k)) +
           "-compressed image: the page index needs a plain image file (decompress it first)");
  if (xsr::Error e = stream_or_error(*o.source, "convert it first (xsr convert IN OUT)")) refuse(e.detail);
  return {std::move(o.source), static_cast<std::uint64_t>(st.st_size)};
}

int compressed_output(xsr::CompressedOutput& zout, int fd, xsr::Codec codec, int level, const char* cmd,
                      bool verbose) {
  if (codec == xsr::Codec::none) return fd;
  if (xsr::Error e = zout.start(fd, codec, level)) cli::die(cli::kUsage, std::string(cmd) + ": " + e.detail);
  if (verbose)
    std::fprintf(stderr,
                 "xsr %s: output compressed (%s) through Boost.Iostreams in a second thread, not zero-copy\n",
                 cmd, std::string(xsr::codec_name(codec)).c_str());
  return zout.fd();
}

int listen_announced(const xsr::net::Address& addr, const char* cmd, bool verbose, std::string* err,
                     std::string* bound) {
  const auto l = xsr::net::listen_on(addr);
  if (!l.ok()) {
    *err = l.error().detail;
    return -1;
  }
  const int lfd = l.value().fd;
  *bound = l.value().bound;
  if ((verbose || (!addr.is_unix && addr.port == "0"))) {
    std::fprintf(stderr, "xsr %s: listening on %s\n", cmd, bound->c_str());
    std::fflush(stderr);
  }
  return lfd;
}

}  // namespace xsr_cmd
