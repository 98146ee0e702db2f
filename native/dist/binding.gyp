# The optional collectives addons, one per engine, so that each links only its own library and
# none is ever a load-time dependency of the main addon. native/dist/build.js runs node-gyp here
# with -Dwith_<engine>=1 for each engine whose library it finds (see docs/distributed.md).
{
  "variables": {
    "with_gloo%": 0,
    "with_mpi%": 0,
    "with_nccl%": 0,
    "mpi_cflags%": "",
    "mpi_libs%": ""
  },
  "target_defaults": {
    "include_dirs": [
      "<!(node -p \"require('node-addon-api').include_dir\")",
      "../kernels",
      "../napi"
    ],
    "defines": ["NAPI_VERSION=9", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "cflags!": ["-fno-exceptions", "-O2", "-O0"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=c++17", "-std=gnu++20", "-O2", "-O0"],
    "cflags": ["-O3", "-fvisibility=hidden", "-Wall"],
    "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-fvisibility=hidden", "-Wall"],
    "ldflags": ["-pthread"]
  },
  "conditions": [
    ["with_gloo==1", {
      "targets": [
        {
          "target_name": "rnnkit_gloo",
          "sources": [
            "gloo_engine.cc", "group_binding.cc", "collectives.cc", "rendezvous.cc", "store.cc",
            "tcp_store.cc", "file_store.cc", "socket_io.cc", "../napi/common.cc", "../napi/addon.cc"
          ],
          "libraries": ["-lgloo"]
        },
        {
          "target_name": "gloo_allreduce_bench",
          "type": "executable",
          "sources": ["tools/gloo_allreduce_bench.cc"],
          "libraries": ["-lgloo"]
        }
      ]
    }],
    ["with_mpi==1", {
      "targets": [
        {
          "target_name": "rnnkit_mpi",
          "sources": ["mpi_engine.cc", "group_binding.cc", "collectives.cc", "../napi/common.cc", "../napi/addon.cc"],
          "cflags_cc": ["<@(mpi_cflags)"],
          "libraries": ["<@(mpi_libs)"]
        }
      ]
    }],
    ["with_nccl==1", {
      "targets": [
        {
          "target_name": "rnnkit_nccl",
          "sources": [
            "nccl_engine.cc", "nccl_library.cc", "group_binding.cc", "collectives.cc", "rendezvous.cc",
            "store.cc", "tcp_store.cc", "file_store.cc", "socket_io.cc", "../napi/common.cc", "../napi/addon.cc"
          ],
          "libraries": ["-ldl"]
        }
      ]
    }]
  ]
}
