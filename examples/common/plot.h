/*
 * plot: a small raster plotting library for the librad example programs.
 *
 * It draws the figures of "A RAD approach to deep mixture models" (section
 * 4): density heat maps, scatter plots of samples and data, Gaussianized
 * points with the N(0, I) level sets, the folding process layer by layer
 * (points coloured by their starting position or by their discrete
 * labels), grids of 8x8 digit images, and titles and captions in a built-in
 * bitmap font. Output is PNG, through libpng. Nothing else is needed.
 *
 * CONVENTIONS (they hold for every function below unless its comment says
 * otherwise)
 *
 * Status. Every fallible function returns int: 0 (PLOT_OK) on success or a
 * positive PLOT_E* code. The library never prints, never aborts and has no
 * global or static mutable state, so distinct canvases may be drawn from
 * different threads at once.
 *
 * Bad input. A NULL pointer where a canvas, panel or buffer is required, a
 * negative count or size, a non-finite number where a finite one is needed,
 * an unknown colour map or a colour above 0xFFFFFF returns PLOT_EINVAL and
 * draws nothing. Data (point coordinates, heat-map and image values) may
 * hold NaN and infinities: such points are skipped and such values painted
 * as documented.
 *
 * Colours. A uint32_t colour is 0xRRGGBB (PLOT_BLACK, PLOT_WHITE, ...).
 * Per-point colour arrays are unsigned char rgb[3] triples.
 *
 * Pixels. The canvas is width x height RGB pixels, (0, 0) at the top left,
 * x to the right, y down. Every drawing call clips: it writes only pixels
 * inside the canvas, and data-space calls only pixels inside their panel's
 * rectangle. Coordinates far outside (even huge ones) are safe.
 *
 * Panels. A panel is a pixel rectangle of a canvas plus a data window
 * [xmin, xmax] x [ymin, ymax] mapped onto it, ymax at the top. Panels are
 * plain structs owned by the caller: make them with plot_grid() (or fill
 * one by hand), set the window with plot_panel_window() or
 * plot_panel_fit(), then draw into them. Drawing order is painter's order:
 * later calls paint over earlier ones.
 *
 * A typical figure:
 *
 *   plot_canvas *c = plot_canvas_new(1200, 440);
 *   plot_panel p[3];
 *   plot_grid(c, 1, 3, 16, 30, 22, 1, p);   // caption strip, titles, square
 *   plot_text_centred(c, 600, 8, "Figure 11", PLOT_BLACK, 2);
 *   plot_panel_window(&p[0], -4, 4, -4, 4);
 *   plot_heatmap(&p[0], 200, 200, logp, -10.0f, 0.0f, PLOT_CMAP_VIRIDIS);
 *   plot_panel_title(&p[0], "density", PLOT_BLACK, 2);
 *   ...
 *   plot_canvas_save_png(c, "fig11.png");
 *   plot_canvas_free(c);
 */
#ifndef RAD_EXAMPLES_PLOT_H
#define RAD_EXAMPLES_PLOT_H

#include <stdint.h>

/* ---- Status codes ------------------------------------------------------ */
#define PLOT_OK 0
#define PLOT_EINVAL 1 /* bad argument (NULL, size, range, non-finite) */
#define PLOT_ENOMEM 2 /* out of memory */
#define PLOT_EIO 3    /* file could not be created, written or renamed */

/* Largest accepted canvas side, in pixels. */
#define PLOT_MAX_SIDE 16384

/* ---- A few colours (0xRRGGBB) ------------------------------------------ */
#define PLOT_BLACK 0x000000u
#define PLOT_WHITE 0xFFFFFFu
#define PLOT_GREY 0x808080u
#define PLOT_LIGHT_GREY 0xD0D0D0u
#define PLOT_DARK_GREY 0x404040u
#define PLOT_RED 0xD62728u   /* Tableau red */
#define PLOT_BLUE 0x1F77B4u  /* Tableau blue */
#define PLOT_ORANGE 0xFF7F0Eu
#define PLOT_GREEN 0x2CA02Cu

/* ---- Colour maps for plot_heatmap and plot_colormap -------------------- */
enum {
  PLOT_CMAP_VIRIDIS = 0, /* matplotlib viridis: dark purple -> yellow */
  PLOT_CMAP_MAGMA = 1,   /* matplotlib magma: black -> purple -> cream */
  PLOT_CMAP_INFERNO = 2, /* matplotlib inferno: black -> red -> yellow */
  PLOT_CMAP_GREY = 3     /* black -> white, linear */
};

/* ---- Bitmap font metrics (at scale 1) ---------------------------------- */
#define PLOT_FONT_W 5       /* glyph width */
#define PLOT_FONT_H 9       /* glyph height: 7 above the baseline, 2 below */
#define PLOT_FONT_ADVANCE 6 /* horizontal step from one glyph to the next */
#define PLOT_FONT_LINE 11   /* vertical step from one line to the next */

/* ---- Canvas ------------------------------------------------------------ */

/* An RGB image. The fields may be read (e.g. to check a pixel); write the
   pixels only through the functions below. pixels holds height rows of
   width*3 bytes, R, G, B, top row first. */
typedef struct plot_canvas {
  int width, height;
  unsigned char *pixels;
} plot_canvas;

/* A new canvas filled with white, or NULL if a side is < 1 or above
   PLOT_MAX_SIDE or memory runs out. Free it with plot_canvas_free(). */
plot_canvas *plot_canvas_new(int width, int height);

/* Frees a canvas from plot_canvas_new(). NULL is accepted (no-op). */
void plot_canvas_free(plot_canvas *canvas);

/* Writes the canvas as an 8-bit RGB PNG. The image is written to a
   temporary file next to path ("path.tmp.PID.N"), then renamed over path,
   so path never holds a partial image; on failure the temporary file is
   removed and path is untouched. PLOT_EIO if a step fails. */
int plot_canvas_save_png(const plot_canvas *canvas, const char *path);

/* Fills the pixel rectangle [x, x+w) x [y, y+h) (clipped to the canvas)
   with colour. w or h <= 0 draws nothing and is not an error. */
int plot_fill_rect(plot_canvas *canvas, int x, int y, int w, int h,
                   uint32_t colour);

/* ---- Panels ------------------------------------------------------------ */

/* A plotting area: pixel rectangle [x, x+w) x [y, y+h) of canvas (it may
   extend past the canvas; drawing is clipped) and the data window shown in
   it. title_h is the height of the title strip directly above the
   rectangle, used by plot_panel_title() (0 if none). */
typedef struct plot_panel {
  plot_canvas *canvas;
  int x, y, w, h;
  float xmin, xmax, ymin, ymax;
  int title_h;
} plot_panel;

/* Splits the canvas into a rows x cols grid of panels, written row by row
   to panels[0 .. rows*cols-1]. A strip of `header` pixels at the top of the
   canvas is left free for a caption (0 for none). margin is both the outer
   margin and the gap between cells. Each cell holds a title strip of
   title_h pixels (0 for none) above its panel. If square is nonzero, each
   panel is the largest square that fits its cell below the title strip,
   centred there. The grid is
   centred on the canvas. Every panel's window is set to [0, 1] x [0, 1].
   PLOT_EINVAL if rows or cols < 1, a size is negative, or the panels would
   be smaller than 1 pixel. */
int plot_grid(plot_canvas *canvas, int rows, int cols, int margin, int header,
              int title_h, int square, plot_panel *panels);

/* Splits the rectangle of parent into a rows x cols grid of sub-panels,
   written row by row to panels[0 .. rows*cols-1] (which may include
   parent itself): gap pixels between cells, no outer margin, a title strip
   of title_h pixels above each sub-panel, square as in plot_grid(). Use it
   for a row of small panels inside one cell of a figure (e.g. one panel
   per layer). Windows are set to [0, 1] x [0, 1]. PLOT_EINVAL as for
   plot_grid(). */
int plot_panel_split(const plot_panel *parent, int rows, int cols, int gap,
                     int title_h, int square, plot_panel *panels);

/* Sets the data window. PLOT_EINVAL (panel unchanged) unless every bound
   is finite, xmin < xmax and ymin < ymax. */
int plot_panel_window(plot_panel *panel, float xmin, float xmax, float ymin,
                      float ymax);

/* Sets the window to the bounding box of the points xy (n x 2, row-major)
   whose coordinates are both finite, widened by pad (a fraction of the span
   on each side, e.g. 0.05). If equal is nonzero, the shorter side is then
   widened so that one data unit has the same length in pixels along x and
   y (circles stay round). A degenerate box (one point, or all points on a
   line) gets a span of 1 around its centre. With no finite point, the
   window becomes [-1, 1] x [-1, 1] and 0 is returned. PLOT_EINVAL if pad
   is negative or not finite, n < 0, xy is NULL with n > 0, or equal is
   nonzero and the panel rectangle is empty. */
int plot_panel_fit(plot_panel *panel, int n, const float *xy, float pad,
                   int equal);

/* Fills the panel rectangle with colour (a background). */
int plot_panel_fill(const plot_panel *panel, uint32_t colour);

/* Draws a 1-pixel border on the outermost pixels of the panel rectangle. */
int plot_panel_frame(const plot_panel *panel, uint32_t colour);

/* Draws s centred above the panel: vertically centred in its title strip
   if title_h > 0, else just above the rectangle. Clipped to the canvas, not
   the panel. */
int plot_panel_title(const plot_panel *panel, const char *s, uint32_t colour,
                     int scale);

/* Maps data coordinates to continuous pixel coordinates of the canvas
   (pixel (i, j) covers [i, i+1) x [j, j+1)). Either output may be NULL. */
int plot_panel_to_pixel(const plot_panel *panel, double x, double y,
                        double *px, double *py);

/* ---- Data-space drawing (clipped to the panel) ------------------------- */

/* Draws n points xy (n x 2, row-major), each a filled disc of `radius`
   pixels (0 = a single pixel) alpha-blended over the canvas with opacity
   alpha in [0, 1], so that overlapping points build up density (10,000
   points at alpha 0.2 work well). Point i has colour rgb[3i .. 3i+2], or
   `colour` for every point if rgb is NULL. Points with a NaN or infinite
   coordinate, or outside the window, are skipped; discs near the edge are
   clipped to the panel. radius must be in [0, 256]. */
int plot_scatter(const plot_panel *panel, int n, const float *xy,
                 const unsigned char *rgb, uint32_t colour, float alpha,
                 int radius);

/* As plot_scatter, coloured by discrete label: point i gets
   plot_colour_categorical(labels[i]); a negative label draws it grey. */
int plot_scatter_labels(const plot_panel *panel, int n, const float *xy,
                        const int32_t *labels, float alpha, int radius);

/* Paints a gw x gh grid of values over the whole window: values holds gh
   rows of gw floats, row 0 at ymax (the top), column 0 at xmin; cell
   (i, j) covers an equal share of the window. Each pixel takes the value of
   the cell under its centre (nearest neighbour), mapped through the colour
   map with vmin -> the lowest colour and vmax -> the highest (values
   beyond are clamped; vmin > vmax reverses the map). NaN and -inf are
   painted as the lowest colour of the map, +inf as the highest.
   PLOT_EINVAL if gw or gh < 1, values is NULL, vmin or vmax is not finite,
   vmin == vmax, or colormap is unknown. */
int plot_heatmap(const plot_panel *panel, int gw, int gh, const float *values,
                 float vmin, float vmax, int colormap);

/* Draws the circle of centre (cx, cy) and radius r >= 0 in data units
   (an ellipse if the window's aspect differs from the panel's), as an
   anti-aliased line of `thickness` pixels (1 .. 256). The part outside the
   panel is clipped. */
int plot_circle(const plot_panel *panel, float cx, float cy, float r,
                uint32_t colour, int thickness);

/* Draws the segment (x0, y0) - (x1, y1) in data units, anti-aliased,
   `thickness` pixels wide (1 .. 256), with round ends, clipped to the
   panel. */
int plot_line(const plot_panel *panel, float x0, float y0, float x1,
              float y1, uint32_t colour, int thickness);

/* Draws up to rows*cols images of iw x ih pixels as a grid of tiles inside
   the panel (row by row; images beyond rows*cols are ignored, missing ones
   leave their tile untouched). images holds n images of iw*ih floats, each
   row-major with its top row first. Values map to grey, vmin -> black and
   vmax -> white (vmin > vmax gives dark ink on white; NaN and -inf count
   as vmin). Tiles are scaled up by the largest integer factor that fits,
   nearest neighbour, separated by 2-pixel gaps when there is room, and the
   grid is centred in the panel; if even factor 1 does not fit, tiles are
   resampled to the space available. The data window is not used.
   PLOT_EINVAL if the panel has fewer pixels than tiles along a side, or
   vmin or vmax is not finite, or vmin == vmax. */
int plot_image_grid(const plot_panel *panel, int n, int rows, int cols,
                    const float *images, int iw, int ih, float vmin,
                    float vmax);

/* Fills the panel with a colour bar of the colour map: the lowest colour
   at the bottom and the highest at the top if vertical is nonzero, else
   from left to right. The data window is not used. */
int plot_colorbar(const plot_panel *panel, int colormap, int vertical);

/* ---- Colours ----------------------------------------------------------- */

/* The colour of map `colormap` at t in [0, 1] (clamped; NaN gives the
   lowest colour), by linear interpolation between 65 anchors taken from
   matplotlib's 256-entry tables (error under 0.5/255). */
int plot_colormap(int colormap, float t, unsigned char rgb[3]);

/* Colour k of a 20-colour categorical palette: the Tableau 10 colours
   (blue, orange, green, red, purple, brown, pink, grey, olive, cyan) for
   k = 0..9, then their light variants for 10..19, then again from the
   start (k mod 20). PLOT_EINVAL if k < 0. */
int plot_colour_categorical(int k, unsigned char rgb[3]);

/* A smooth 2-D colour map of position, for "coloured by where it started":
   (x, y) is placed in the window (clamped to it) and the colour is blended
   bilinearly between four corner colours: blue at (xmin, ymin), red at
   (xmax, ymin), green at (xmin, ymax), yellow at (xmax, ymax). Nearby
   points get similar colours and both coordinates can be read back. A NaN
   coordinate gives grey (not an error). PLOT_EINVAL if the window is not
   finite or empty. */
int plot_colour_position(float x, float y, float xmin, float xmax, float ymin,
                         float ymax, unsigned char rgb[3]);

/* plot_colour_position for n points xy (n x 2, row-major), into rgb
   (n x 3). Typical use: colour the initial points once, then pass the same
   rgb to plot_scatter for the points after each layer. */
int plot_colours_position(int n, const float *xy, float xmin, float xmax,
                          float ymin, float ymax, unsigned char *rgb);

/* ---- Text (built-in 5x7 bitmap font with descenders, ASCII 32..126) ---- */

/* Draws s with its top-left corner at pixel (x, y), each font pixel a
   scale x scale block (scale 1 .. 64). '\n' starts a new line at x; tabs
   are drawn as spaces; other characters outside 32..126 (including UTF-8
   bytes) as '?'. Clipped to the canvas. */
int plot_text(plot_canvas *canvas, int x, int y, const char *s,
              uint32_t colour, int scale);

/* As plot_text, with the text block centred horizontally on cx (each line
   centred on its own). */
int plot_text_centred(plot_canvas *canvas, int cx, int y, const char *s,
                      uint32_t colour, int scale);

/* Width in pixels of the widest line of s at this scale (0 for "" or a
   NULL s or a scale < 1). */
int plot_text_width(const char *s, int scale);

/* Height in pixels of s at this scale, from the top of the first line to
   the bottom of the descenders of the last (0 for NULL or scale < 1). */
int plot_text_height(const char *s, int scale);

#endif /* RAD_EXAMPLES_PLOT_H */
