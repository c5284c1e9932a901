<?xml version="1.0" encoding="UTF-8"?>
<!-- The courseware web page layer over Debian's docbook-xsl-ns xhtml5 stylesheets: the whole book
     as one page (index.html) linking the customer's CSS (courseware.css), with the customer's logo
     on a band of the primary colour at the top (the CSS colours it). -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:d="http://docbook.org/ns/docbook"
    xmlns="http://www.w3.org/1999/xhtml"
    exclude-result-prefixes="d">

  <xsl:import href="http://docbook.sourceforge.net/release/xsl-ns/current/xhtml5/docbook.xsl"/>

  <xsl:param name="cw.logo" select="''"/>
  <xsl:param name="cw.publisher" select="''"/>
  <xsl:param name="docbook.css.link" select="0"/>
  <!-- no docbook.css written beside the output (or into the working folder, without base.dir) -->
  <xsl:param name="docbook.css.source" select="''"/>
  <xsl:param name="html.stylesheet" select="'courseware.css'"/>
  <xsl:param name="generate.toc">book toc,title,figure,table,example</xsl:param>
  <xsl:param name="generate.consistent.ids" select="1"/>
  <xsl:param name="make.clean.html" select="1"/>
  <xsl:param name="xref.with.number.and.title" select="1"/>

  <xsl:template name="user.header.content">
    <div class="courseware-band">
      <xsl:if test="$cw.logo != ''">
        <img class="courseware-logo" src="{$cw.logo}" alt="{$cw.publisher}"/>
      </xsl:if>
    </div>
  </xsl:template>
</xsl:stylesheet>
