/* Headers only (include/clinux.h); a C target needs one source file. */
#include "clinux.h"
