// The option syntax of Xen's Python tools (optparse), for the drop-ins.
#pragma once

#include <boost/program_options.hpp>
#include <map>
#include <string>

namespace xsr::cli {

// Parses argv as optparse parses the reference tools' command lines: long
// options by any unique prefix, extra positional arguments ignored, an
// unknown option an error ("no such option: -x"). `error` is called with
// optparse's message and does not return. `spelled` (when given) receives,
// for each option given, "--NAME" when it was spelled long and "" when
// short, so a message can name it as the user did.
boost::program_options::variables_map parse_optparse(int argc, char** argv,
                                                     const boost::program_options::options_description& desc,
                                                     void (*error)(const std::string& msg),
                                                     std::map<std::string, std::string>* spelled = nullptr);

}  // namespace xsr::cli
