#include "common/optparse.h"

namespace xsr::cli {

namespace po = boost::program_options;

po::variables_map parse_optparse(int argc, char** argv, const po::options_description& desc,
                                 void (*error)(const std::string& msg),
                                 std::map<std::string, std::string>* spelled) {
  po::variables_map vm;
  try {
    // unix_style takes unique prefixes of long options, as optparse does.
    auto parsed = po::command_line_parser(argc, argv)
                      .options(desc)
                      .style(po::command_line_style::unix_style)
                      .allow_unregistered()
                      .run();
    for (const auto& o : parsed.options) {
      if (o.unregistered) {
        // optparse ignores extra positional arguments but not unknown options.
        if (!o.original_tokens.empty() && o.original_tokens[0].size() > 1 && o.original_tokens[0][0] == '-') {
          std::string t = o.original_tokens[0];
          if (auto eq = t.find('='); eq != std::string::npos) t.resize(eq);
          error("no such option: " + t);
        }
        continue;
      }
      if (spelled && !o.original_tokens.empty())
        (*spelled)[o.string_key] = o.original_tokens[0].rfind("--", 0) == 0 ? "--" + o.string_key : "";
    }
    po::store(parsed, vm);
    po::notify(vm);
  } catch (const po::error& e) {
    error(e.what());
  }
  return vm;
}

}  // namespace xsr::cli
