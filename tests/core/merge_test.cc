#include "carnet/merge.h"

#include <catch2/catch.hpp>
