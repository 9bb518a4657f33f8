#include "common/report.hpp"
