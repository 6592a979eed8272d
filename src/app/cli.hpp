#pragma once
// Entry point of the flowsec program: parses the command line and runs the
// chosen mode. Returns the process exit code.
namespace flowsec::app {
int run(int argc, char** argv);
}
