# `make install PREFIX=...` and `make deb`: libgaze.so, its public headers, the `gaze` command, a
# CMake package (find_package(gaze) -> gaze::gaze) and a pkg-config file (gaze.pc).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
# Installing and packing take what is built (`make install` and `make deb` build first): they never
# rebuild, so a test that packs the build cannot relink binaries other tests are running.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

# The installed `gaze` finds the installed libgaze.so wherever the prefix is.
set_target_properties(gaze_cli PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
set_target_properties(gaze PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})

install(TARGETS gaze EXPORT gazeTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS gaze_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The public headers: everything under src/gaze but the SIMD kernels' inline headers and oneDNN's
# wrapper, which include private dependencies (Highway, oneDNN) and are only used inside libgaze.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/src/gaze DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h"
        PATTERN "*-inl.h" EXCLUDE
        PATTERN "onednn_matmul.h" EXCLUDE
        PATTERN "page" EXCLUDE)

set(GAZE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/gaze)
install(EXPORT gazeTargets NAMESPACE gaze:: DESTINATION ${GAZE_CMAKE_DIR})
file(WRITE ${CMAKE_BINARY_DIR}/gazeConfig.cmake.in [=[
@PACKAGE_INIT@
# What gaze's public headers and link interface need: OpenMP, fmt and nlohmann-json.
include(CMakeFindDependencyMacro)
find_dependency(OpenMP)
find_dependency(fmt)
find_dependency(nlohmann_json)
include("${CMAKE_CURRENT_LIST_DIR}/gazeTargets.cmake")
check_required_components(gaze)
]=])
configure_package_config_file(${CMAKE_BINARY_DIR}/gazeConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/gazeConfig.cmake INSTALL_DESTINATION ${GAZE_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/gazeConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/gazeConfig.cmake ${CMAKE_BINARY_DIR}/gazeConfigVersion.cmake
        DESTINATION ${GAZE_CMAKE_DIR})

# pkg-config: relative to the prefix it is installed under (${pcfiledir}).
file(WRITE ${CMAKE_BINARY_DIR}/gaze.pc.in [=[
prefix=${pcfiledir}/../..
libdir=${prefix}/@CMAKE_INSTALL_LIBDIR@
includedir=${prefix}/@CMAKE_INSTALL_INCLUDEDIR@

Name: gaze
Description: attention-based sequence models: train, run and explain them (C++)
Version: @PROJECT_VERSION@
Requires: fmt nlohmann_json
Cflags: -I${includedir} -fopenmp -std=c++20
Libs: -L${libdir} -Wl,-rpath,${libdir} -lgaze -fopenmp
]=])
configure_file(${CMAKE_BINARY_DIR}/gaze.pc.in ${CMAKE_BINARY_DIR}/gaze.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/gaze.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# `make deb`: one Debian package with all of the above, its library dependencies found by
# dpkg-shlibdeps, and the -dev packages the headers need.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME gaze)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "gaze developers <gaze@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "attention-based sequence models: train, run, serve and explain them from C++ and the command line")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libfmt-dev, nlohmann-json3-dev")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)

# The Python package's files, for setup.py (`pip install .`): `cmake --install BUILD --component
# python --prefix STAGE` lays out STAGE/gaze with the extension, libgaze.so.0 and the `gaze` command
# beside the pure-Python files, each finding the library relative to itself. Not part of a plain
# `cmake --install`.
if(TARGET gaze_python)
  set_target_properties(gaze_python PROPERTIES INSTALL_RPATH "$ORIGIN/lib")
  install(TARGETS gaze_python LIBRARY DESTINATION gaze COMPONENT python EXCLUDE_FROM_ALL)
  install(TARGETS gaze LIBRARY DESTINATION gaze/lib NAMELINK_SKIP COMPONENT python EXCLUDE_FROM_ALL)
  install(TARGETS gaze_cli RUNTIME DESTINATION gaze/bin COMPONENT python EXCLUDE_FROM_ALL)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/python/gaze DESTINATION . COMPONENT python EXCLUDE_FROM_ALL
          FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)
endif()
