/*
 * servicecircle map runtime: builds the analysis layers of a coverage map from the
 * compact data that servicecircle.webmap embeds in the page.
 *
 * Every string in that data was HTML-escaped in Python. This code only joins those
 * strings into markup; it never builds markup from unescaped text.
 */
(function (root) {
  "use strict";
  var L = root.L;
  var registry = {};

  // Google encoded polyline (precision 1e-5, lat/lon order) -> [[lon, lat], ...]
  function decode(str) {
    var coords = [];
    var index = 0;
    var lat = 0;
    var lon = 0;
    var len = str.length;
    function next() {
      var shift = 0;
      var result = 0;
      var b;
      do {
        b = str.charCodeAt(index++) - 63;
        result |= (b & 0x1f) << shift;
        shift += 5;
      } while (b >= 0x20);
      return result & 1 ? ~(result >> 1) : result >> 1;
    }
    while (index < len) {
      lat += next();
      lon += next();
      coords.push([lon / 1e5, lat / 1e5]);
    }
    return coords;
  }

  function toGeoJSON(features) {
    return {
      type: "FeatureCollection",
      features: features.map(function (f) {
        var geometry = f.point
          ? { type: "Point", coordinates: f.point }
          : {
              type: "MultiPolygon",
              coordinates: f.polygons.map(function (poly) {
                return poly.map(decode);
              }),
            };
        return { type: "Feature", properties: f.properties, geometry: geometry };
      }),
    };
  }

  // rows: [[property, label-html], ...]; values are escaped text or numbers
  function table(props, rows) {
    var out = "";
    for (var i = 0; i < rows.length; i++) {
      var v = props[rows[i][0]];
      if (v === null || v === undefined || v === "") continue;
      out += "<tr><th>" + rows[i][1] + "</th><td>" + v + "</td></tr>";
    }
    return out ? '<table class="sc-table">' + out + "</table>" : "";
  }

  function ensurePane(map, name, zIndex, interactive) {
    if (!name || map.getPane(name)) return;
    var pane = map.createPane(name);
    pane.style.zIndex = String(zIndex);
    if (!interactive) pane.style.pointerEvents = "none";
  }

  function layer(map, features, cfg) {
    var interactive = cfg.interactive !== false;
    ensurePane(map, cfg.pane, cfg.zIndex, interactive);
    function styleOf(feature) {
      var cls = cfg.classKey ? feature.properties[cfg.classKey] : null;
      var extra = cfg.styles && cfg.styles[cls];
      return L.extend({}, cfg.style || {}, extra || {});
    }
    var options = {
      pane: cfg.pane,
      interactive: interactive,
      style: styleOf,
      pointToLayer: function (feature, latlng) {
        if (cfg.marker === "site") {
          var rank = feature.properties.rank;
          return L.marker(latlng, {
            pane: cfg.pane,
            keyboard: false,
            icon: L.divIcon({
              className: "sc-site",
              html: "<span>★" + (rank === null || rank === undefined ? "" : rank) + "</span>",
              iconSize: [34, 22],
              iconAnchor: [17, 11],
            }),
          });
        }
        return L.circleMarker(latlng, L.extend({ pane: cfg.pane, interactive: interactive }, styleOf(feature)));
      },
      onEachFeature: function (feature, lyr) {
        var p = feature.properties;
        if (cfg.tooltip) {
          lyr.bindTooltip(function () {
            return table(p, cfg.tooltip);
          }, { sticky: cfg.sticky === true });
        }
        if (cfg.popup) {
          lyr.bindPopup(function () {
            var head = cfg.title && p[cfg.title] ? '<div class="sc-title">' + p[cfg.title] + "</div>" : "";
            return head + table(p, cfg.popup);
          }, { maxWidth: 380 });
        }
      },
    };
    var geo = L.geoJson(toGeoJSON(features), options);
    var out = geo;
    if (cfg.cluster) {
      out = L.markerClusterGroup({
        chunkedLoading: true,
        showCoverageOnHover: false,
        maxClusterRadius: 45,
        clusterPane: cfg.pane,
      });
      out.addLayer(geo);
    }
    if (cfg.role) registry[cfg.role] = out;
    return out;
  }

  function legend(map, html, position) {
    var control = L.control({ position: position || "bottomleft" });
    control.onAdd = function () {
      var div = L.DomUtil.create("div", "sc-legend leaflet-bar");
      div.innerHTML = html;
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    control.addTo(map);
    return control;
  }

  function search(map, target, opts) {
    if (!L.Control.Search) return null;
    var control = new L.Control.Search({
      layer: target,
      propertyName: opts.property,
      initial: false, // match anywhere: "社区" finds every grid of a community
      marker: false,
      collapsed: false,
      position: "topleft",
      textPlaceholder: opts.placeholder,
      textErr: opts.notFound,
      textCancel: opts.cancel,
      moveToLocation: function (latlng, title, m) {
        if (latlng.layer && latlng.layer.getBounds) {
          m.fitBounds(latlng.layer.getBounds(), { maxZoom: 17 });
        } else {
          m.setView(latlng, 17);
        }
      },
    });
    control.on("search:locationfound", function (e) {
      if (e.layer && e.layer.openPopup && e.layer._map) e.layer.openPopup();
    });
    map.addControl(control);
    return control;
  }

  root.servicecircle = {
    decode: decode,
    layer: layer,
    legend: legend,
    search: search,
    table: table,
    registry: registry,
  };
})(window);
