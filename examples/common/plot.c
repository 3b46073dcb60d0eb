/* plot: a small raster plotting library for the librad examples. See
   plot.h for the API and its conventions. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* getpid() */
#endif

#include "plot.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- Colour map anchors -------------------------------------------------
   65 anchors per map, at t = k/64, interpolated from matplotlib's 256-entry
   listed colour maps (_cm_listed.py); linear interpolation between them
   stays within 0.5/255 of the full tables. */
#define PLOT_CMAP_ANCHORS 65

static const float cmap_viridis[PLOT_CMAP_ANCHORS][3] = {
    {0.267004f, 0.004874f, 0.329415f},
    {0.272574f, 0.025475f, 0.353002f},
    {0.276987f, 0.050151f, 0.375542f},
    {0.280234f, 0.073155f, 0.396917f},
    {0.282302f, 0.094624f, 0.417024f},
    {0.283189f, 0.115279f, 0.435759f},
    {0.282902f, 0.135449f, 0.453035f},
    {0.281464f, 0.155292f, 0.468786f},
    {0.278919f, 0.174879f, 0.482972f},
    {0.275332f, 0.194226f, 0.495583f},
    {0.270788f, 0.213324f, 0.506643f},
    {0.265392f, 0.232149f, 0.516212f},
    {0.259266f, 0.250672f, 0.524378f},
    {0.252548f, 0.268863f, 0.531255f},
    {0.245374f, 0.286704f, 0.536971f},
    {0.237887f, 0.304183f, 0.541669f},
    {0.230223f, 0.321297f, 0.545488f},
    {0.222503f, 0.338054f, 0.548566f},
    {0.214836f, 0.354470f, 0.551027f},
    {0.207310f, 0.370569f, 0.552986f},
    {0.199995f, 0.386377f, 0.554533f},
    {0.192929f, 0.401927f, 0.555747f},
    {0.186132f, 0.417256f, 0.556682f},
    {0.179598f, 0.432397f, 0.557377f},
    {0.173302f, 0.447386f, 0.557850f},
    {0.167206f, 0.462255f, 0.558105f},
    {0.161265f, 0.477036f, 0.558125f},
    {0.155429f, 0.491757f, 0.557881f},
    {0.149668f, 0.506440f, 0.557329f},
    {0.143985f, 0.521105f, 0.556421f},
    {0.138415f, 0.535767f, 0.555090f},
    {0.133073f, 0.550433f, 0.553271f},
    {0.128148f, 0.565107f, 0.550893f},
    {0.123944f, 0.579787f, 0.547879f},
    {0.120875f, 0.594465f, 0.544158f},
    {0.119472f, 0.609130f, 0.539658f},
    {0.120325f, 0.623765f, 0.534308f},
    {0.124008f, 0.638350f, 0.528048f},
    {0.130961f, 0.652859f, 0.520817f},
    {0.141418f, 0.667265f, 0.512563f},
    {0.155378f, 0.681539f, 0.503240f},
    {0.172658f, 0.695648f, 0.492808f},
    {0.192974f, 0.709556f, 0.481231f},
    {0.216009f, 0.723228f, 0.468485f},
    {0.241467f, 0.736626f, 0.454543f},
    {0.269081f, 0.749712f, 0.439394f},
    {0.298636f, 0.762445f, 0.423019f},
    {0.329945f, 0.774787f, 0.405421f},
    {0.362859f, 0.786695f, 0.386589f},
    {0.397243f, 0.798131f, 0.366537f},
    {0.432985f, 0.809056f, 0.345271f},
    {0.469973f, 0.819433f, 0.322819f},
    {0.508094f, 0.829231f, 0.299221f},
    {0.547236f, 0.838420f, 0.274535f},
    {0.587266f, 0.846982f, 0.248871f},
    {0.628031f, 0.854912f, 0.222406f},
    {0.669358f, 0.862217f, 0.195444f},
    {0.711046f, 0.868926f, 0.168529f},
    {0.752867f, 0.875089f, 0.142650f},
    {0.794574f, 0.880785f, 0.119611f},
    {0.835913f, 0.886110f, 0.102462f},
    {0.876642f, 0.891184f, 0.095256f},
    {0.916550f, 0.896130f, 0.100822f},
    {0.955450f, 0.901085f, 0.118219f},
    {0.993248f, 0.906157f, 0.143936f},
};
static const float cmap_magma[PLOT_CMAP_ANCHORS][3] = {
    {0.001462f, 0.000466f, 0.013866f},
    {0.005928f, 0.004822f, 0.037018f},
    {0.013638f, 0.011710f, 0.068420f},
    {0.024647f, 0.020603f, 0.100298f},
    {0.039352f, 0.030922f, 0.132996f},
    {0.056279f, 0.041945f, 0.166774f},
    {0.073836f, 0.051802f, 0.201823f},
    {0.092425f, 0.059710f, 0.238153f},
    {0.112445f, 0.065347f, 0.275597f},
    {0.134255f, 0.068327f, 0.313656f},
    {0.158053f, 0.068398f, 0.351237f},
    {0.183669f, 0.065877f, 0.386516f},
    {0.210446f, 0.062164f, 0.417310f},
    {0.237455f, 0.059593f, 0.442126f},
    {0.264005f, 0.060121f, 0.460937f},
    {0.289862f, 0.064228f, 0.474756f},
    {0.315086f, 0.071193f, 0.484831f},
    {0.339842f, 0.079946f, 0.492204f},
    {0.364292f, 0.089616f, 0.497628f},
    {0.388578f, 0.099630f, 0.501608f},
    {0.412809f, 0.109649f, 0.504471f},
    {0.437062f, 0.119496f, 0.506425f},
    {0.461404f, 0.129078f, 0.507582f},
    {0.485875f, 0.138361f, 0.508003f},
    {0.510505f, 0.147346f, 0.507707f},
    {0.535314f, 0.156052f, 0.506685f},
    {0.560309f, 0.164515f, 0.504911f},
    {0.585484f, 0.172785f, 0.502348f},
    {0.610826f, 0.180922f, 0.498954f},
    {0.636311f, 0.189002f, 0.494686f},
    {0.661900f, 0.197115f, 0.489500f},
    {0.687543f, 0.205368f, 0.483363f},
    {0.713175f, 0.213890f, 0.476245f},
    {0.738710f, 0.222833f, 0.468133f},
    {0.764040f, 0.232382f, 0.459034f},
    {0.789028f, 0.242750f, 0.448987f},
    {0.813506f, 0.254188f, 0.438061f},
    {0.837257f, 0.266980f, 0.426403f},
    {0.860021f, 0.281430f, 0.414239f},
    {0.881490f, 0.297846f, 0.401918f},
    {0.901325f, 0.316489f, 0.389950f},
    {0.919197f, 0.337512f, 0.379003f},
    {0.934849f, 0.360883f, 0.369862f},
    {0.948174f, 0.386357f, 0.363296f},
    {0.959241f, 0.413511f, 0.359894f},
    {0.968267f, 0.441850f, 0.359959f},
    {0.975534f, 0.470932f, 0.363492f},
    {0.981340f, 0.500400f, 0.370302f},
    {0.985945f, 0.530007f, 0.380081f},
    {0.989545f, 0.559613f, 0.392480f},
    {0.992325f, 0.589118f, 0.407170f},
    {0.994396f, 0.618492f, 0.423853f},
    {0.995864f, 0.647716f, 0.442271f},
    {0.996801f, 0.676793f, 0.462210f},
    {0.997265f, 0.705742f, 0.483497f},
    {0.997333f, 0.734561f, 0.505985f},
    {0.997004f, 0.763297f, 0.529580f},
    {0.996346f, 0.791952f, 0.554190f},
    {0.995397f, 0.820548f, 0.579755f},
    {0.994194f, 0.849100f, 0.606226f},
    {0.992807f, 0.877616f, 0.633546f},
    {0.991313f, 0.906098f, 0.661645f},
    {0.989803f, 0.934552f, 0.690427f},
    {0.988362f, 0.962989f, 0.719765f},
    {0.987053f, 0.991438f, 0.749504f},
};
static const float cmap_inferno[PLOT_CMAP_ANCHORS][3] = {
    {0.001462f, 0.000466f, 0.013866f},
    {0.005983f, 0.004672f, 0.038438f},
    {0.013922f, 0.011169f, 0.071599f},
    {0.025636f, 0.019231f, 0.105527f},
    {0.041966f, 0.028000f, 0.140584f},
    {0.060958f, 0.036432f, 0.176921f},
    {0.081463f, 0.043195f, 0.214399f},
    {0.103911f, 0.046942f, 0.252388f},
    {0.128488f, 0.047323f, 0.289642f},
    {0.154897f, 0.044687f, 0.324177f},
    {0.182345f, 0.040497f, 0.353899f},
    {0.209911f, 0.037133f, 0.377648f},
    {0.237010f, 0.036581f, 0.395612f},
    {0.263474f, 0.039428f, 0.408764f},
    {0.289354f, 0.045270f, 0.418193f},
    {0.314794f, 0.053002f, 0.424789f},
    {0.339929f, 0.061759f, 0.429200f},
    {0.364870f, 0.070960f, 0.431862f},
    {0.389702f, 0.080270f, 0.433066f},
    {0.414485f, 0.089518f, 0.432989f},
    {0.439263f, 0.098629f, 0.431733f},
    {0.464057f, 0.107589f, 0.429362f},
    {0.488879f, 0.116421f, 0.425894f},
    {0.513726f, 0.125173f, 0.421343f},
    {0.538581f, 0.133906f, 0.415702f},
    {0.563420f, 0.142699f, 0.408969f},
    {0.588210f, 0.151641f, 0.401141f},
    {0.612905f, 0.160829f, 0.392219f},
    {0.637450f, 0.170368f, 0.382220f},
    {0.661786f, 0.180371f, 0.371161f},
    {0.685842f, 0.190956f, 0.359081f},
    {0.709540f, 0.202238f, 0.346027f},
    {0.732796f, 0.214332f, 0.332053f},
    {0.755520f, 0.227349f, 0.317235f},
    {0.777617f, 0.241383f, 0.301650f},
    {0.798992f, 0.256516f, 0.285377f},
    {0.819548f, 0.272810f, 0.268507f},
    {0.839192f, 0.290304f, 0.251122f},
    {0.857837f, 0.309010f, 0.233294f},
    {0.875405f, 0.328919f, 0.215082f},
    {0.891827f, 0.349998f, 0.196523f},
    {0.907049f, 0.372194f, 0.177630f},
    {0.921026f, 0.395441f, 0.158394f},
    {0.933725f, 0.419663f, 0.138784f},
    {0.945123f, 0.444778f, 0.118766f},
    {0.955202f, 0.470707f, 0.098336f},
    {0.963952f, 0.497371f, 0.077607f},
    {0.971363f, 0.524698f, 0.057027f},
    {0.977425f, 0.552622f, 0.038020f},
    {0.982126f, 0.581083f, 0.025878f},
    {0.985454f, 0.610025f, 0.024506f},
    {0.987395f, 0.639399f, 0.035926f},
    {0.987932f, 0.669158f, 0.059628f},
    {0.987050f, 0.699250f, 0.089100f},
    {0.984742f, 0.729624f, 0.122151f},
    {0.981013f, 0.760218f, 0.158198f},
    {0.975924f, 0.790939f, 0.197307f},
    {0.969592f, 0.821666f, 0.239920f},
    {0.962340f, 0.852188f, 0.286715f},
    {0.954858f, 0.882145f, 0.338560f},
    {0.948615f, 0.910906f, 0.396250f},
    {0.946426f, 0.937449f, 0.459360f},
    {0.951827f, 0.960753f, 0.524708f},
    {0.966326f, 0.980750f, 0.587440f},
    {0.988362f, 0.998364f, 0.644924f},
};

/* ---- Font ---------------------------------------------------------------
   95 glyphs, ASCII 32..126, 5 pixels wide and 9 rows tall: rows 0..6 hold
   capitals and digits (baseline under row 6), rows 7..8 the descenders.
   Bit 4 of a row byte is the leftmost pixel. */
static const unsigned char font_glyphs[95][PLOT_FONT_H] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* space */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04, 0x00, 0x00}, /* ! */
    {0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* " */
    {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A, 0x00, 0x00}, /* # */
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04, 0x00, 0x00}, /* $ */
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03, 0x00, 0x00}, /* % */
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D, 0x00, 0x00}, /* & */
    {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* quote */
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02, 0x00, 0x00}, /* ( */
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08, 0x00, 0x00}, /* ) */
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00, 0x00, 0x00}, /* * */
    {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00, 0x00, 0x00}, /* + */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x04, 0x08}, /* , */
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00, 0x00, 0x00}, /* - */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x00, 0x00}, /* . */
    {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10, 0x00, 0x00}, /* / */
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E, 0x00, 0x00}, /* 0 */
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00}, /* 1 */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F, 0x00, 0x00}, /* 2 */
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E, 0x00, 0x00}, /* 3 */
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02, 0x00, 0x00}, /* 4 */
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E, 0x00, 0x00}, /* 5 */
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E, 0x00, 0x00}, /* 6 */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08, 0x00, 0x00}, /* 7 */
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E, 0x00, 0x00}, /* 8 */
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C, 0x00, 0x00}, /* 9 */
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00, 0x00, 0x00}, /* : */
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x04, 0x08, 0x00}, /* ; */
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02, 0x00, 0x00}, /* < */
    {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00, 0x00, 0x00}, /* = */
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08, 0x00, 0x00}, /* > */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04, 0x00, 0x00}, /* ? */
    {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E, 0x00, 0x00}, /* @ */
    {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x00, 0x00}, /* A */
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E, 0x00, 0x00}, /* B */
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E, 0x00, 0x00}, /* C */
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C, 0x00, 0x00}, /* D */
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F, 0x00, 0x00}, /* E */
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10, 0x00, 0x00}, /* F */
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F, 0x00, 0x00}, /* G */
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11, 0x00, 0x00}, /* H */
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00}, /* I */
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C, 0x00, 0x00}, /* J */
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11, 0x00, 0x00}, /* K */
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F, 0x00, 0x00}, /* L */
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11, 0x00, 0x00}, /* M */
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x00, 0x00}, /* N */
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E, 0x00, 0x00}, /* O */
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10, 0x00, 0x00}, /* P */
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D, 0x00, 0x00}, /* Q */
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11, 0x00, 0x00}, /* R */
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E, 0x00, 0x00}, /* S */
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x00}, /* T */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E, 0x00, 0x00}, /* U */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04, 0x00, 0x00}, /* V */
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A, 0x00, 0x00}, /* W */
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11, 0x00, 0x00}, /* X */
    {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x00, 0x00}, /* Y */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F, 0x00, 0x00}, /* Z */
    {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E, 0x00, 0x00}, /* [ */
    {0x10, 0x10, 0x08, 0x04, 0x02, 0x01, 0x01, 0x00, 0x00}, /* backslash */
    {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E, 0x00, 0x00}, /* ] */
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* ^ */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x00}, /* _ */
    {0x08, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* ` */
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F, 0x00, 0x00}, /* a */
    {0x10, 0x10, 0x1E, 0x11, 0x11, 0x11, 0x1E, 0x00, 0x00}, /* b */
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E, 0x00, 0x00}, /* c */
    {0x01, 0x01, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x00, 0x00}, /* d */
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E, 0x00, 0x00}, /* e */
    {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08, 0x00, 0x00}, /* f */
    {0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E}, /* g */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00}, /* h */
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00}, /* i */
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}, /* j */
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12, 0x00, 0x00}, /* k */
    {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00}, /* l */
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x15, 0x15, 0x00, 0x00}, /* m */
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00}, /* n */
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E, 0x00, 0x00}, /* o */
    {0x00, 0x00, 0x1E, 0x11, 0x11, 0x11, 0x1E, 0x10, 0x10}, /* p */
    {0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x01}, /* q */
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00, 0x00}, /* r */
    {0x00, 0x00, 0x0F, 0x10, 0x0E, 0x01, 0x1E, 0x00, 0x00}, /* s */
    {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06, 0x00, 0x00}, /* t */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D, 0x00, 0x00}, /* u */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04, 0x00, 0x00}, /* v */
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A, 0x00, 0x00}, /* w */
    {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x00, 0x00}, /* x */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E}, /* y */
    {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F, 0x00, 0x00}, /* z */
    {0x03, 0x04, 0x04, 0x08, 0x04, 0x04, 0x03, 0x00, 0x00}, /* { */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x00}, /* | */
    {0x18, 0x04, 0x04, 0x02, 0x04, 0x04, 0x18, 0x00, 0x00}, /* } */
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00, 0x00, 0x00}, /* ~ */
};

/* Tableau 10, then the light variants of the Tableau 20 palette. */
static const uint32_t categorical[20] = {
    0x1F77B4u, 0xFF7F0Eu, 0x2CA02Cu, 0xD62728u, 0x9467BDu,
    0x8C564Bu, 0xE377C2u, 0x7F7F7Fu, 0xBCBD22u, 0x17BECFu,
    0xAEC7E8u, 0xFFBB78u, 0x98DF8Au, 0xFF9896u, 0xC5B0D5u,
    0xC49C94u, 0xF7B6D2u, 0xC7C7C7u, 0xDBDB8Du, 0x9EDAE5u};

/* Corners of the 2-D position colour map, RGB in [0, 1]. */
static const float pos_corner[4][3] = {
    {0.16f, 0.38f, 0.86f}, /* (xmin, ymin): blue */
    {0.89f, 0.16f, 0.20f}, /* (xmax, ymin): red */
    {0.13f, 0.72f, 0.36f}, /* (xmin, ymax): green */
    {0.99f, 0.83f, 0.13f}  /* (xmax, ymax): yellow */
};

/* ---- Internal helpers --------------------------------------------------- */

/* A pixel rectangle [x0, x1) x [y0, y1) of a canvas; empty if x0 >= x1 or
   y0 >= y1. */
typedef struct {
  int x0, y0, x1, y1;
} prect;

static int canvas_ok(const plot_canvas *c) {
  return c != NULL && c->pixels != NULL && c->width >= 1 &&
         c->height >= 1 && c->width <= PLOT_MAX_SIDE &&
         c->height <= PLOT_MAX_SIDE;
}

static int colour_ok(uint32_t colour) { return colour <= 0xFFFFFFu; }

static void unpack(uint32_t colour, unsigned char rgb[3]) {
  rgb[0] = (unsigned char)((colour >> 16) & 0xFF);
  rgb[1] = (unsigned char)((colour >> 8) & 0xFF);
  rgb[2] = (unsigned char)(colour & 0xFF);
}

static int window_ok(float xmin, float xmax, float ymin, float ymax) {
  return isfinite(xmin) && isfinite(xmax) && isfinite(ymin) &&
         isfinite(ymax) && xmin < xmax && ymin < ymax;
}

/* A panel whose rectangle can be drawn into (the window is not checked). */
static int panel_rect_ok(const plot_panel *p) {
  return p != NULL && canvas_ok(p->canvas) && p->w >= 1 && p->h >= 1;
}

static int panel_ok(const plot_panel *p) {
  return panel_rect_ok(p) && window_ok(p->xmin, p->xmax, p->ymin, p->ymax);
}

static int clampi(long long v, int lo, int hi) {
  return v < lo ? lo : v > hi ? hi : (int)v;
}

/* The rectangle [x, x+w) x [y, y+h) clipped to the canvas. */
static prect clip_to_canvas(const plot_canvas *c, long long x, long long y,
                            long long w, long long h) {
  prect r;
  r.x0 = clampi(x, 0, c->width);
  r.y0 = clampi(y, 0, c->height);
  r.x1 = clampi(x + (w > 0 ? w : 0), 0, c->width);
  r.y1 = clampi(y + (h > 0 ? h : 0), 0, c->height);
  return r;
}

static prect panel_clip(const plot_panel *p) {
  return clip_to_canvas(p->canvas, p->x, p->y, p->w, p->h);
}

static int prect_empty(prect r) { return r.x0 >= r.x1 || r.y0 >= r.y1; }

static unsigned char *pixel_at(const plot_canvas *c, int x, int y) {
  return c->pixels + ((size_t)y * (size_t)c->width + (size_t)x) * 3;
}

/* q <- q + (c - q) * a, a in [0, 1]. */
static void blend(unsigned char *q, const unsigned char c[3], float a) {
  for (int k = 0; k < 3; k++) {
    float v = (float)q[k] + ((float)c[k] - (float)q[k]) * a;
    q[k] = (unsigned char)(v + 0.5f);
  }
}

static void fill_prect(const plot_canvas *c, prect r, const unsigned char rgb[3]) {
  for (int y = r.y0; y < r.y1; y++) {
    unsigned char *q = pixel_at(c, r.x0, y);
    for (int x = r.x0; x < r.x1; x++, q += 3) {
      q[0] = rgb[0];
      q[1] = rgb[1];
      q[2] = rgb[2];
    }
  }
}

/* Data -> continuous canvas pixel coordinates. */
static void to_pixel(const plot_panel *p, double x, double y, double *px,
                     double *py) {
  *px = p->x + (x - p->xmin) / ((double)p->xmax - p->xmin) * p->w;
  *py = p->y + ((double)p->ymax - y) / ((double)p->ymax - p->ymin) * p->h;
}

/* Clamps a double pixel bound into [lo, hi] before converting to int. */
static int clampd(double v, int lo, int hi) {
  if (!(v > lo)) return lo; /* also NaN */
  if (v > hi) return hi;
  return (int)v;
}

/* t in [0, 1] for a value: NaN and -inf give 0, +inf gives 1. */
static float value_t(float v, float vmin, float vmax) {
  if (isnan(v) || v == -INFINITY) return 0.0f;
  if (v == INFINITY) return 1.0f;
  double t = ((double)v - vmin) / ((double)vmax - vmin);
  if (!(t > 0.0)) return 0.0f;
  if (t > 1.0) return 1.0f;
  return (float)t;
}

static const float (*cmap_table(int colormap))[3] {
  switch (colormap) {
  case PLOT_CMAP_VIRIDIS:
    return cmap_viridis;
  case PLOT_CMAP_MAGMA:
    return cmap_magma;
  case PLOT_CMAP_INFERNO:
    return cmap_inferno;
  default:
    return NULL;
  }
}

static int cmap_ok(int colormap) {
  return colormap == PLOT_CMAP_GREY || cmap_table(colormap) != NULL;
}

static unsigned char unit_to_byte(float v) {
  if (!(v > 0.0f)) return 0;
  if (v >= 1.0f) return 255;
  return (unsigned char)(v * 255.0f + 0.5f);
}

/* colormap must be valid. */
static void cmap_rgb(int colormap, float t, unsigned char rgb[3]) {
  if (!(t > 0.0f)) t = 0.0f;
  if (t > 1.0f) t = 1.0f;
  if (colormap == PLOT_CMAP_GREY) {
    rgb[0] = rgb[1] = rgb[2] = unit_to_byte(t);
    return;
  }
  const float(*a)[3] = cmap_table(colormap);
  float x = t * (float)(PLOT_CMAP_ANCHORS - 1);
  int i = (int)x;
  if (i > PLOT_CMAP_ANCHORS - 2) i = PLOT_CMAP_ANCHORS - 2;
  float f = x - (float)i;
  for (int k = 0; k < 3; k++)
    rgb[k] = unit_to_byte(a[i][k] + (a[i + 1][k] - a[i][k]) * f);
}

/* ---- Canvas ------------------------------------------------------------- */

plot_canvas *plot_canvas_new(int width, int height) {
  if (width < 1 || height < 1 || width > PLOT_MAX_SIDE ||
      height > PLOT_MAX_SIDE)
    return NULL;
  plot_canvas *c = malloc(sizeof *c);
  if (c == NULL) return NULL;
  size_t bytes = (size_t)width * (size_t)height * 3;
  c->pixels = malloc(bytes);
  if (c->pixels == NULL) {
    free(c);
    return NULL;
  }
  memset(c->pixels, 0xFF, bytes);
  c->width = width;
  c->height = height;
  return c;
}

void plot_canvas_free(plot_canvas *canvas) {
  if (canvas == NULL) return;
  free(canvas->pixels);
  free(canvas);
}

int plot_canvas_save_png(const plot_canvas *canvas, const char *path) {
  if (!canvas_ok(canvas) || path == NULL || path[0] == '\0')
    return PLOT_EINVAL;
  size_t cap = strlen(path) + 48;
  char *tmp = malloc(cap);
  if (tmp == NULL) return PLOT_ENOMEM;
  FILE *f = NULL;
  for (int attempt = 0; attempt < 100 && f == NULL; attempt++) {
    snprintf(tmp, cap, "%s.tmp.%ld.%d", path, (long)getpid(), attempt);
    errno = 0;
    f = fopen(tmp, "wbx"); /* C11 exclusive create: never clobber */
    if (f == NULL && errno != EEXIST) break;
  }
  if (f == NULL) {
    free(tmp);
    return PLOT_EIO;
  }
  png_image img;
  memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = (png_uint_32)canvas->width;
  img.height = (png_uint_32)canvas->height;
  img.format = PNG_FORMAT_RGB;
  int ok = png_image_write_to_stdio(&img, f, 0, canvas->pixels,
                                    (png_int_32)canvas->width * 3, NULL) != 0;
  png_image_free(&img);
  if (fclose(f) != 0) ok = 0;
  if (ok && rename(tmp, path) != 0) ok = 0;
  if (!ok) remove(tmp);
  free(tmp);
  return ok ? PLOT_OK : PLOT_EIO;
}

int plot_fill_rect(plot_canvas *canvas, int x, int y, int w, int h,
                   uint32_t colour) {
  if (!canvas_ok(canvas) || !colour_ok(colour)) return PLOT_EINVAL;
  unsigned char rgb[3];
  unpack(colour, rgb);
  fill_prect(canvas, clip_to_canvas(canvas, x, y, w, h), rgb);
  return PLOT_OK;
}

/* ---- Panels ------------------------------------------------------------- */

/* Lays out a rows x cols grid of panels in the pixel rectangle
   [X, X+W) x [Y, Y+H): `outer` pixels of margin around the grid, `gap`
   between cells, a title strip of title_h in each cell; the grid is centred
   in the rectangle. Sizes are already validated as non-negative and at most
   PLOT_MAX_SIDE; X, Y, W, H are within int range. */
static int grid_layout(plot_canvas *canvas, long long X, long long Y,
                       long long W, long long H, int rows, int cols,
                       int outer, int gap, int title_h, int square,
                       plot_panel *panels) {
  if (X + W > INT_MAX || Y + H > INT_MAX) return PLOT_EINVAL;
  long long free_w = W - 2LL * outer - (long long)(cols - 1) * gap;
  long long free_h = H - 2LL * outer - (long long)(rows - 1) * gap;
  if (free_w < cols || free_h < rows) return PLOT_EINVAL;
  long long cell_w = free_w / cols, cell_h = free_h / rows;
  long long avail_h = cell_h - title_h;
  if (avail_h < 1) return PLOT_EINVAL;
  long long ox = X + (W - (cols * cell_w + (long long)(cols - 1) * gap)) / 2;
  long long oy = Y + (H - (rows * cell_h + (long long)(rows - 1) * gap)) / 2;
  for (int r = 0; r < rows; r++) {
    for (int c = 0; c < cols; c++) {
      plot_panel *p = &panels[(size_t)r * (size_t)cols + (size_t)c];
      long long px = ox + c * (cell_w + gap);
      long long py = oy + r * (cell_h + gap) + title_h;
      long long pw = cell_w, ph = avail_h;
      if (square) {
        long long side = pw < ph ? pw : ph;
        px += (pw - side) / 2;
        py += (ph - side) / 2;
        pw = ph = side;
      }
      p->canvas = canvas;
      p->x = (int)px;
      p->y = (int)py;
      p->w = (int)pw;
      p->h = (int)ph;
      p->xmin = 0.0f;
      p->xmax = 1.0f;
      p->ymin = 0.0f;
      p->ymax = 1.0f;
      p->title_h = title_h;
    }
  }
  return PLOT_OK;
}

static int layout_args_ok(int rows, int cols, int a, int b, int c) {
  return rows >= 1 && cols >= 1 && rows <= PLOT_MAX_SIDE &&
         cols <= PLOT_MAX_SIDE && a >= 0 && b >= 0 && c >= 0 &&
         a <= PLOT_MAX_SIDE && b <= PLOT_MAX_SIDE && c <= PLOT_MAX_SIDE;
}

int plot_grid(plot_canvas *canvas, int rows, int cols, int margin, int header,
              int title_h, int square, plot_panel *panels) {
  if (!canvas_ok(canvas) || panels == NULL ||
      !layout_args_ok(rows, cols, margin, header, title_h))
    return PLOT_EINVAL;
  return grid_layout(canvas, 0, header, canvas->width,
                     (long long)canvas->height - header, rows, cols, margin,
                     margin, title_h, square, panels);
}

int plot_panel_split(const plot_panel *parent, int rows, int cols, int gap,
                     int title_h, int square, plot_panel *panels) {
  if (!panel_rect_ok(parent) || panels == NULL ||
      !layout_args_ok(rows, cols, gap, title_h, 0))
    return PLOT_EINVAL;
  plot_panel copy = *parent; /* panels may alias parent */
  return grid_layout(copy.canvas, copy.x, copy.y, copy.w, copy.h, rows, cols,
                     0, gap, title_h, square, panels);
}

int plot_panel_window(plot_panel *panel, float xmin, float xmax, float ymin,
                      float ymax) {
  if (panel == NULL || !window_ok(xmin, xmax, ymin, ymax)) return PLOT_EINVAL;
  panel->xmin = xmin;
  panel->xmax = xmax;
  panel->ymin = ymin;
  panel->ymax = ymax;
  return PLOT_OK;
}

/* [lo, hi] as floats, clamped to the float range and widened by an ulp if
   rounding made it empty. */
static void to_float_range(double lo, double hi, float *flo, float *fhi) {
  if (lo < -FLT_MAX) lo = -FLT_MAX;
  if (hi > FLT_MAX) hi = FLT_MAX;
  float a = (float)lo, b = (float)hi;
  if (!(a < b)) {
    if (b < FLT_MAX)
      b = nextafterf(b, INFINITY);
    else
      a = nextafterf(a, -INFINITY);
  }
  *flo = a;
  *fhi = b;
}

int plot_panel_fit(plot_panel *panel, int n, const float *xy, float pad,
                   int equal) {
  if (panel == NULL || n < 0 || (n > 0 && xy == NULL) || !isfinite(pad) ||
      pad < 0.0f || (equal && (panel->w < 1 || panel->h < 1)))
    return PLOT_EINVAL;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (size_t i = 0; i < (size_t)n; i++) {
    float x = xy[2 * i], y = xy[2 * i + 1];
    if (!isfinite(x) || !isfinite(y)) continue;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
  }
  if (x0 > x1) { /* no finite point */
    x0 = y0 = -1.0;
    x1 = y1 = 1.0;
  } else {
    double sx = x1 - x0, sy = y1 - y0;
    if (sx <= 0.0) {
      sx = 1.0;
      x0 -= 0.5;
      x1 += 0.5;
    }
    if (sy <= 0.0) {
      sy = 1.0;
      y0 -= 0.5;
      y1 += 0.5;
    }
    x0 -= pad * sx;
    x1 += pad * sx;
    y0 -= pad * sy;
    y1 += pad * sy;
  }
  if (equal) {
    double ux = panel->w / (x1 - x0), uy = panel->h / (y1 - y0);
    if (ux > uy) { /* x has more pixels per unit: widen x */
      double half = 0.5 * panel->w / uy, c = 0.5 * (x0 + x1);
      x0 = c - half;
      x1 = c + half;
    } else if (uy > ux) {
      double half = 0.5 * panel->h / ux, c = 0.5 * (y0 + y1);
      y0 = c - half;
      y1 = c + half;
    }
  }
  float a, b, c, d;
  to_float_range(x0, x1, &a, &b);
  to_float_range(y0, y1, &c, &d);
  return plot_panel_window(panel, a, b, c, d);
}

int plot_panel_fill(const plot_panel *panel, uint32_t colour) {
  if (!panel_rect_ok(panel) || !colour_ok(colour)) return PLOT_EINVAL;
  unsigned char rgb[3];
  unpack(colour, rgb);
  fill_prect(panel->canvas, panel_clip(panel), rgb);
  return PLOT_OK;
}

int plot_panel_frame(const plot_panel *panel, uint32_t colour) {
  if (!panel_rect_ok(panel) || !colour_ok(colour)) return PLOT_EINVAL;
  unsigned char rgb[3];
  unpack(colour, rgb);
  const plot_canvas *c = panel->canvas;
  long long x = panel->x, y = panel->y, w = panel->w, h = panel->h;
  fill_prect(c, clip_to_canvas(c, x, y, w, 1), rgb);
  fill_prect(c, clip_to_canvas(c, x, y + h - 1, w, 1), rgb);
  fill_prect(c, clip_to_canvas(c, x, y, 1, h), rgb);
  fill_prect(c, clip_to_canvas(c, x + w - 1, y, 1, h), rgb);
  return PLOT_OK;
}

int plot_panel_to_pixel(const plot_panel *panel, double x, double y,
                        double *px, double *py) {
  if (!panel_ok(panel)) return PLOT_EINVAL;
  double u, v;
  to_pixel(panel, x, y, &u, &v);
  if (px != NULL) *px = u;
  if (py != NULL) *py = v;
  return PLOT_OK;
}

/* ---- Scatter ------------------------------------------------------------ */

/* Pixel of a point known to be inside the window (edges included). */
static void point_pixel(const plot_panel *p, float x, float y, int *ix,
                        int *iy) {
  double px, py;
  to_pixel(p, x, y, &px, &py);
  long long i = (long long)floor(px), j = (long long)floor(py);
  if (i >= (long long)p->x + p->w) i = (long long)p->x + p->w - 1;
  if (j >= (long long)p->y + p->h) j = (long long)p->y + p->h - 1;
  if (i < p->x) i = p->x;
  if (j < p->y) j = p->y;
  *ix = (int)i;
  *iy = (int)j;
}

static void draw_disc(const plot_canvas *c, prect clip, int cx, int cy,
                      int radius, const unsigned char rgb[3], float alpha) {
  long long rr = (long long)radius * radius + radius;
  int y0 = clampi((long long)cy - radius, clip.y0, clip.y1);
  int y1 = clampi((long long)cy + radius + 1, clip.y0, clip.y1);
  int x0 = clampi((long long)cx - radius, clip.x0, clip.x1);
  int x1 = clampi((long long)cx + radius + 1, clip.x0, clip.x1);
  for (int y = y0; y < y1; y++) {
    long long dy = (long long)y - cy;
    for (int x = x0; x < x1; x++) {
      long long dx = (long long)x - cx;
      if (dx * dx + dy * dy > rr) continue;
      blend(pixel_at(c, x, y), rgb, alpha);
    }
  }
}

static int inside_window(const plot_panel *p, float x, float y) {
  /* false for NaN */
  return x >= p->xmin && x <= p->xmax && y >= p->ymin && y <= p->ymax;
}

static int scatter_args_ok(const plot_panel *panel, int n, const float *xy,
                           float alpha, int radius) {
  return panel_ok(panel) && n >= 0 && (n == 0 || xy != NULL) &&
         alpha >= 0.0f && alpha <= 1.0f && radius >= 0 && radius <= 256;
}

int plot_scatter(const plot_panel *panel, int n, const float *xy,
                 const unsigned char *rgb, uint32_t colour, float alpha,
                 int radius) {
  if (!scatter_args_ok(panel, n, xy, alpha, radius) || !colour_ok(colour))
    return PLOT_EINVAL;
  prect clip = panel_clip(panel);
  if (prect_empty(clip) || alpha == 0.0f) return PLOT_OK;
  unsigned char base[3];
  unpack(colour, base);
  for (size_t i = 0; i < (size_t)n; i++) {
    float x = xy[2 * i], y = xy[2 * i + 1];
    if (!inside_window(panel, x, y)) continue;
    int cx, cy;
    point_pixel(panel, x, y, &cx, &cy);
    draw_disc(panel->canvas, clip, cx, cy, radius,
              rgb != NULL ? rgb + 3 * i : base, alpha);
  }
  return PLOT_OK;
}

int plot_scatter_labels(const plot_panel *panel, int n, const float *xy,
                        const int32_t *labels, float alpha, int radius) {
  if (!scatter_args_ok(panel, n, xy, alpha, radius) ||
      (n > 0 && labels == NULL))
    return PLOT_EINVAL;
  prect clip = panel_clip(panel);
  if (prect_empty(clip) || alpha == 0.0f) return PLOT_OK;
  for (size_t i = 0; i < (size_t)n; i++) {
    float x = xy[2 * i], y = xy[2 * i + 1];
    if (!inside_window(panel, x, y)) continue;
    unsigned char rgb[3];
    if (labels[i] < 0)
      unpack(PLOT_GREY, rgb);
    else
      unpack(categorical[labels[i] % 20], rgb);
    int cx, cy;
    point_pixel(panel, x, y, &cx, &cy);
    draw_disc(panel->canvas, clip, cx, cy, radius, rgb, alpha);
  }
  return PLOT_OK;
}

/* ---- Heat map, colour bar ----------------------------------------------- */

int plot_heatmap(const plot_panel *panel, int gw, int gh, const float *values,
                 float vmin, float vmax, int colormap) {
  if (!panel_ok(panel) || gw < 1 || gh < 1 || values == NULL ||
      !isfinite(vmin) || !isfinite(vmax) || vmin == vmax || !cmap_ok(colormap))
    return PLOT_EINVAL;
  prect clip = panel_clip(panel);
  const plot_canvas *c = panel->canvas;
  for (int y = clip.y0; y < clip.y1; y++) {
    double fy = ((double)y - panel->y + 0.5) * gh / panel->h;
    int gy = clampd(fy, 0, gh - 1);
    const float *row = values + (size_t)gy * (size_t)gw;
    unsigned char *q = pixel_at(c, clip.x0, y);
    for (int x = clip.x0; x < clip.x1; x++, q += 3) {
      double fx = ((double)x - panel->x + 0.5) * gw / panel->w;
      int gx = clampd(fx, 0, gw - 1);
      cmap_rgb(colormap, value_t(row[gx], vmin, vmax), q);
    }
  }
  return PLOT_OK;
}

int plot_colorbar(const plot_panel *panel, int colormap, int vertical) {
  if (!panel_rect_ok(panel) || !cmap_ok(colormap)) return PLOT_EINVAL;
  prect clip = panel_clip(panel);
  const plot_canvas *c = panel->canvas;
  for (int y = clip.y0; y < clip.y1; y++) {
    unsigned char *q = pixel_at(c, clip.x0, y);
    for (int x = clip.x0; x < clip.x1; x++, q += 3) {
      double t = vertical ? 1.0 - ((double)y - panel->y + 0.5) / panel->h
                          : ((double)x - panel->x + 0.5) / panel->w;
      cmap_rgb(colormap, (float)t, q);
    }
  }
  return PLOT_OK;
}

/* ---- Circles and lines -------------------------------------------------- */

int plot_circle(const plot_panel *panel, float cx, float cy, float r,
                uint32_t colour, int thickness) {
  if (!panel_ok(panel) || !isfinite(cx) || !isfinite(cy) || !isfinite(r) ||
      r < 0.0f || !colour_ok(colour) || thickness < 1 || thickness > 256)
    return PLOT_EINVAL;
  prect clip = panel_clip(panel);
  if (prect_empty(clip)) return PLOT_OK;
  unsigned char rgb[3];
  unpack(colour, rgb);
  double pcx, pcy;
  to_pixel(panel, cx, cy, &pcx, &pcy);
  double rx = r * (panel->w / ((double)panel->xmax - panel->xmin));
  double ry = r * (panel->h / ((double)panel->ymax - panel->ymin));
  if (rx < 1e-6) rx = 1e-6;
  if (ry < 1e-6) ry = 1e-6;
  double hw = 0.5 * thickness, ext = hw + 1.0;
  int x0 = clampd(floor(pcx - rx - ext), clip.x0, clip.x1);
  int x1 = clampd(ceil(pcx + rx + ext), clip.x0, clip.x1);
  int y0 = clampd(floor(pcy - ry - ext), clip.y0, clip.y1);
  int y1 = clampd(ceil(pcy + ry + ext), clip.y0, clip.y1);
  for (int y = y0; y < y1; y++) {
    double v = y + 0.5 - pcy;
    for (int x = x0; x < x1; x++) {
      double u = x + 0.5 - pcx;
      /* Distance to the ellipse, to first order: (q - 1) / |grad q|. */
      double q = hypot(u / rx, v / ry), d;
      if (q < 1e-12) {
        d = rx < ry ? rx : ry;
      } else {
        double g = hypot(u / (rx * rx), v / (ry * ry)) / q;
        d = (q - 1.0) / g;
      }
      double a = hw + 0.5 - fabs(d);
      if (a <= 0.0) continue;
      blend(pixel_at(panel->canvas, x, y), rgb, a >= 1.0 ? 1.0f : (float)a);
    }
  }
  return PLOT_OK;
}

/* Liang-Barsky: clips the segment to [bx0, bx1] x [by0, by1]; 0 if it
   misses the box. */
static int clip_segment(double *ax, double *ay, double *bx, double *by,
                        double bx0, double bx1, double by0, double by1) {
  double t0 = 0.0, t1 = 1.0, dx = *bx - *ax, dy = *by - *ay;
  double p[4] = {-dx, dx, -dy, dy};
  double q[4] = {*ax - bx0, bx1 - *ax, *ay - by0, by1 - *ay};
  for (int k = 0; k < 4; k++) {
    if (p[k] == 0.0) {
      if (q[k] < 0.0) return 0;
      continue;
    }
    double t = q[k] / p[k];
    if (p[k] < 0.0) {
      if (t > t1) return 0;
      if (t > t0) t0 = t;
    } else {
      if (t < t0) return 0;
      if (t < t1) t1 = t;
    }
  }
  double x0 = *ax + t0 * dx, y0 = *ay + t0 * dy;
  double x1 = *ax + t1 * dx, y1 = *ay + t1 * dy;
  *ax = x0;
  *ay = y0;
  *bx = x1;
  *by = y1;
  return 1;
}

int plot_line(const plot_panel *panel, float x0, float y0, float x1,
              float y1, uint32_t colour, int thickness) {
  if (!panel_ok(panel) || !isfinite(x0) || !isfinite(y0) || !isfinite(x1) ||
      !isfinite(y1) || !colour_ok(colour) || thickness < 1 || thickness > 256)
    return PLOT_EINVAL;
  prect clip = panel_clip(panel);
  if (prect_empty(clip)) return PLOT_OK;
  unsigned char rgb[3];
  unpack(colour, rgb);
  double ax, ay, bx, by;
  to_pixel(panel, x0, y0, &ax, &ay);
  to_pixel(panel, x1, y1, &bx, &by);
  double hw = 0.5 * thickness, R = hw + 1.0;
  if (!clip_segment(&ax, &ay, &bx, &by, clip.x0 - R, clip.x1 + R,
                    clip.y0 - R, clip.y1 + R))
    return PLOT_OK;
  double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  int ya = clampd(floor((ay < by ? ay : by) - R), clip.y0, clip.y1);
  int yb = clampd(ceil((ay > by ? ay : by) + R), clip.y0, clip.y1);
  for (int y = ya; y < yb; y++) {
    double yc = y + 0.5, tlo = 0.0, thi = 1.0;
    /* The part of the segment within R of this row, in t. */
    if (fabs(dy) > 1e-12) {
      double t1 = (yc - R - ay) / dy, t2 = (yc + R - ay) / dy;
      if (t1 > t2) {
        double t = t1;
        t1 = t2;
        t2 = t;
      }
      tlo = t1 > 0.0 ? t1 : 0.0;
      thi = t2 < 1.0 ? t2 : 1.0;
      if (tlo > thi) continue;
    } else if (fabs(ay - yc) > R) {
      continue;
    }
    double xa = ax + tlo * dx, xb = ax + thi * dx;
    int xlo = clampd(floor((xa < xb ? xa : xb) - R), clip.x0, clip.x1);
    int xhi = clampd(ceil((xa > xb ? xa : xb) + R), clip.x0, clip.x1);
    for (int x = xlo; x < xhi; x++) {
      double xc = x + 0.5, t = 0.0;
      if (len2 > 0.0) {
        t = ((xc - ax) * dx + (yc - ay) * dy) / len2;
        t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
      }
      double d = hypot(xc - (ax + t * dx), yc - (ay + t * dy));
      double a = hw + 0.5 - d;
      if (a <= 0.0) continue;
      blend(pixel_at(panel->canvas, x, y), rgb, a >= 1.0 ? 1.0f : (float)a);
    }
  }
  return PLOT_OK;
}

/* ---- Image grid ---------------------------------------------------------- */

int plot_image_grid(const plot_panel *panel, int n, int rows, int cols,
                    const float *images, int iw, int ih, float vmin,
                    float vmax) {
  if (!panel_rect_ok(panel) || n < 0 || rows < 1 || cols < 1 || iw < 1 ||
      ih < 1 || (n > 0 && images == NULL) || !isfinite(vmin) ||
      !isfinite(vmax) || vmin == vmax)
    return PLOT_EINVAL;
  long long w = panel->w, h = panel->h;
  long long gap = 2;
  if (w - gap * (cols - 1) < (long long)cols * iw ||
      h - gap * (rows - 1) < (long long)rows * ih)
    gap = 0;
  long long aw = w - gap * (cols - 1), ah = h - gap * (rows - 1);
  long long sx = aw / ((long long)cols * iw), sy = ah / ((long long)rows * ih);
  long long s = sx < sy ? sx : sy, tw, th;
  if (s >= 1) {
    tw = s * iw;
    th = s * ih;
  } else {
    tw = aw / cols;
    th = ah / rows;
  }
  if (tw < 1 || th < 1) return PLOT_EINVAL; /* fewer pixels than tiles */
  long long ox = panel->x + (w - (cols * tw + (cols - 1) * gap)) / 2;
  long long oy = panel->y + (h - (rows * th + (rows - 1) * gap)) / 2;
  prect clip = panel_clip(panel);
  long long m = (long long)rows * cols;
  if (n < m) m = n;
  size_t isz = (size_t)iw * (size_t)ih;
  for (long long k = 0; k < m; k++) {
    long long tx = ox + (k % cols) * (tw + gap);
    long long ty = oy + (k / cols) * (th + gap);
    prect t = clip_to_canvas(panel->canvas, tx, ty, tw, th);
    t.x0 = t.x0 > clip.x0 ? t.x0 : clip.x0;
    t.y0 = t.y0 > clip.y0 ? t.y0 : clip.y0;
    t.x1 = t.x1 < clip.x1 ? t.x1 : clip.x1;
    t.y1 = t.y1 < clip.y1 ? t.y1 : clip.y1;
    const float *img = images + (size_t)k * isz;
    for (int y = t.y0; y < t.y1; y++) {
      long long sy_ = ((long long)y - ty) * ih / th;
      const float *row = img + (size_t)sy_ * (size_t)iw;
      unsigned char *q = pixel_at(panel->canvas, t.x0, y);
      for (int x = t.x0; x < t.x1; x++, q += 3) {
        long long sx_ = ((long long)x - tx) * iw / tw;
        q[0] = q[1] = q[2] = unit_to_byte(value_t(row[sx_], vmin, vmax));
      }
    }
  }
  return PLOT_OK;
}

/* ---- Colours ------------------------------------------------------------- */

int plot_colormap(int colormap, float t, unsigned char rgb[3]) {
  if (rgb == NULL || !cmap_ok(colormap)) return PLOT_EINVAL;
  cmap_rgb(colormap, t, rgb);
  return PLOT_OK;
}

int plot_colour_categorical(int k, unsigned char rgb[3]) {
  if (rgb == NULL || k < 0) return PLOT_EINVAL;
  unpack(categorical[k % 20], rgb);
  return PLOT_OK;
}

static void position_rgb(float x, float y, float xmin, float xmax, float ymin,
                         float ymax, unsigned char rgb[3]) {
  if (isnan(x) || isnan(y)) {
    unpack(PLOT_GREY, rgb);
    return;
  }
  float u = value_t(x, xmin, xmax), v = value_t(y, ymin, ymax);
  for (int k = 0; k < 3; k++) {
    float bottom = pos_corner[0][k] + (pos_corner[1][k] - pos_corner[0][k]) * u;
    float top = pos_corner[2][k] + (pos_corner[3][k] - pos_corner[2][k]) * u;
    rgb[k] = unit_to_byte(bottom + (top - bottom) * v);
  }
}

int plot_colour_position(float x, float y, float xmin, float xmax, float ymin,
                         float ymax, unsigned char rgb[3]) {
  if (rgb == NULL || !window_ok(xmin, xmax, ymin, ymax)) return PLOT_EINVAL;
  position_rgb(x, y, xmin, xmax, ymin, ymax, rgb);
  return PLOT_OK;
}

int plot_colours_position(int n, const float *xy, float xmin, float xmax,
                          float ymin, float ymax, unsigned char *rgb) {
  if (n < 0 || (n > 0 && (xy == NULL || rgb == NULL)) ||
      !window_ok(xmin, xmax, ymin, ymax))
    return PLOT_EINVAL;
  for (size_t i = 0; i < (size_t)n; i++)
    position_rgb(xy[2 * i], xy[2 * i + 1], xmin, xmax, ymin, ymax,
                 rgb + 3 * i);
  return PLOT_OK;
}

/* ---- Text ---------------------------------------------------------------- */

static size_t line_length(const char *s) {
  size_t n = 0;
  while (s[n] != '\0' && s[n] != '\n') n++;
  return n;
}

static long long line_width(size_t chars, int scale) {
  if (chars == 0) return 0;
  return ((long long)chars * PLOT_FONT_ADVANCE -
          (PLOT_FONT_ADVANCE - PLOT_FONT_W)) * scale;
}

static void draw_glyph(plot_canvas *c, long long x, long long y,
                       unsigned char ch, const unsigned char rgb[3],
                       int scale) {
  if (ch == '\t') ch = ' ';
  if (ch < 32 || ch > 126) ch = '?';
  const unsigned char *g = font_glyphs[ch - 32];
  for (int row = 0; row < PLOT_FONT_H; row++) {
    for (int col = 0; col < PLOT_FONT_W; col++) {
      if (!(g[row] & (0x10 >> col))) continue;
      fill_prect(c, clip_to_canvas(c, x + (long long)col * scale,
                                   y + (long long)row * scale, scale, scale),
                 rgb);
    }
  }
}

static int draw_text(plot_canvas *canvas, int x, int y, const char *s,
                     uint32_t colour, int scale, int centred) {
  if (!canvas_ok(canvas) || s == NULL || !colour_ok(colour) || scale < 1 ||
      scale > 64)
    return PLOT_EINVAL;
  unsigned char rgb[3];
  unpack(colour, rgb);
  long long step = (long long)PLOT_FONT_ADVANCE * scale;
  long long ly = y;
  for (const char *line = s;;) {
    size_t len = line_length(line);
    long long lx = centred ? x - line_width(len, scale) / 2 : x;
    if (ly < canvas->height && ly + (long long)PLOT_FONT_H * scale > 0) {
      for (size_t k = 0; k < len; k++) {
        long long gx = lx + (long long)k * step;
        if (gx >= canvas->width) break;
        if (gx + step <= 0) continue;
        draw_glyph(canvas, gx, ly, (unsigned char)line[k], rgb, scale);
      }
    }
    if (line[len] == '\0') break;
    line += len + 1;
    ly += (long long)PLOT_FONT_LINE * scale;
  }
  return PLOT_OK;
}

int plot_text(plot_canvas *canvas, int x, int y, const char *s,
              uint32_t colour, int scale) {
  return draw_text(canvas, x, y, s, colour, scale, 0);
}

int plot_text_centred(plot_canvas *canvas, int cx, int y, const char *s,
                      uint32_t colour, int scale) {
  return draw_text(canvas, cx, y, s, colour, scale, 1);
}

int plot_text_width(const char *s, int scale) {
  if (s == NULL || scale < 1) return 0;
  long long best = 0;
  for (const char *line = s;;) {
    size_t len = line_length(line);
    long long w = line_width(len, scale);
    if (w > best) best = w;
    if (line[len] == '\0') break;
    line += len + 1;
  }
  return best > INT_MAX ? INT_MAX : (int)best;
}

int plot_text_height(const char *s, int scale) {
  if (s == NULL || scale < 1) return 0;
  long long lines = 1;
  for (const char *p = s; *p != '\0'; p++)
    if (*p == '\n') lines++;
  long long h = (lines * PLOT_FONT_LINE - (PLOT_FONT_LINE - PLOT_FONT_H)) *
                (long long)scale;
  return h > INT_MAX ? INT_MAX : (int)h;
}

int plot_panel_title(const plot_panel *panel, const char *s, uint32_t colour,
                     int scale) {
  if (!panel_rect_ok(panel) || s == NULL || !colour_ok(colour) || scale < 1 ||
      scale > 64)
    return PLOT_EINVAL;
  /* Centre the capitals (7 of the 9 rows); descenders hang below. */
  long long th = plot_text_height(s, scale) -
                 (long long)(PLOT_FONT_H - 7) * scale;
  long long ty = panel->title_h > 0
                     ? (long long)panel->y - panel->title_h +
                           (panel->title_h - th) / 2
                     : (long long)panel->y - plot_text_height(s, scale) -
                           2LL * scale;
  long long tx = (long long)panel->x + panel->w / 2;
  if (ty < INT_MIN || ty > INT_MAX || tx > INT_MAX) return PLOT_OK;
  return plot_text_centred(panel->canvas, (int)tx, (int)ty, s, colour, scale);
}
